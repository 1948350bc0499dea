// Render every card the bot sends with Microsoft's Adaptive Cards renderer (npm `adaptivecards`)
// and the Teams host configuration, in headless Chromium, at Teams' desktop chat width (450 px)
// and a phone's (320 px); write PNGs to tools/out/ and list any text the renderer cut off
// (a button title or text wider than its box), opening every Action.ShowCard panel to check its
// inside too. Exit status 1 if a title is cut at 450 px, or at 320 px on a staff-facing card.
//
//   cd tools && npm ci && node render_cards.mjs [--python ../.venv/bin/python] [--only NAME]
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const python = option("--python", resolve(here, "../.venv/bin/python"));
const only = option("--only", null);
const chromium = option("--chromium", "chromium");
const widths = [450, 320];
const out = join(here, "out");
mkdirSync(out, { recursive: true });

const cards = JSON.parse(execFileSync(python, [join(here, "cards_json.py")], { encoding: "utf8" }));
const hostConfig = readFileSync(join(here, "teams-host-config.json"), "utf8");
const lib = (path) => pathToFileURL(join(here, "node_modules", path)).href;

function page(card, width, check) {
  return `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="${lib("adaptivecards/dist/adaptivecards.css")}">
<style>body{margin:0;padding:8px;background:#f5f5f5;font-family:"Segoe UI",system-ui,sans-serif}
#card{width:${width}px;background:#fff;border:1px solid #e1dfdd;border-radius:4px;overflow:hidden}</style>
<script src="${lib("markdown-it/dist/markdown-it.min.js")}"></script>
<script src="${lib("adaptivecards/dist/adaptivecards.min.js")}"></script></head>
<body><div id="card"></div><script>
const md = window.markdownit();
AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => { result.outputHtml = md.render(text); result.didProcess = true; };
const card = new AdaptiveCards.AdaptiveCard();
card.hostConfig = new AdaptiveCards.HostConfig(${hostConfig});
card.parse(${JSON.stringify(card)});
document.getElementById("card").appendChild(card.render());
function cutOff() {
  // Text the renderer clipped (an ellipsis or a hidden overflow), or text past the card's edge.
  const edge = document.getElementById("card").getBoundingClientRect().right;
  const found = [];
  for (const el of document.querySelectorAll("#card *")) {
    if (!el.textContent.trim() || el.offsetParent === null) continue;
    const style = getComputedStyle(el);
    const clips = style.overflow !== "visible" || style.textOverflow === "ellipsis";
    const clipped = clips && (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight);
    if (clipped || (!el.children.length && el.getBoundingClientRect().right > edge + 0.5)) {
      found.push(el.textContent.trim().slice(0, 60));
    }
  }
  return found;
}
let cut = cutOff();
if (${check}) {
  for (const button of document.querySelectorAll("#card button[aria-expanded]")) {
    button.click(); cut = cut.concat(cutOff()); button.click();
  }
}
document.title = JSON.stringify({ height: document.body.scrollHeight, cut: [...new Set(cut)] });
</script></body></html>`;
}

function run(file, extra) {
  return execFileSync(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
    "--virtual-time-budget=3000", ...extra, pathToFileURL(file).href], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}

const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
let failed = false;
for (const [name, { card, staff }] of Object.entries(cards)) {
  if (only && name !== only) continue;
  for (const width of widths) {
    const checkFile = join(out, `${name}-${width}.check.html`);
    writeFileSync(checkFile, page(card, width, true));
    const title = /<title>(.*?)<\/title>/s.exec(run(checkFile, ["--dump-dom"]));
    const { height, cut } = JSON.parse(unescape(title[1]));
    const shotFile = join(out, `${name}-${width}.html`);
    writeFileSync(shotFile, page(card, width, false));
    run(shotFile, [`--window-size=${width + 16},${height}`, `--screenshot=${join(out, `${name}-${width}.png`)}`]);
    const matters = width === 450 || staff;
    if (cut.length && matters) failed = true;
    console.log(`${cut.length ? (matters ? "CUT " : "cut ") : "ok  "} ${name} @ ${width}px${cut.length ? ": " + cut.join(" | ") : ""}`);
  }
}
process.exit(failed ? 1 : 0);
