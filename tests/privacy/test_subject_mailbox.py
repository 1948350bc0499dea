"""With Graph on, a person's mail in the shared mailbox is listed by `subject export` and
deleted by `subject erase --mailbox`, found by the bot's own references; what cannot be
deleted is named."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import OFF_TOPIC, Bot, eventually, graph_mail_env, resolved
from tests.privacy.cli import run_cli
from tests.support.graph import GraphWorld

JO_EMAIL = "jo.bloggs@council.example"
JO_MAILED = "Could the Shire Hall bike shed get a second lock before the winter evenings?"
SAM_QUESTION = "Will the staff choir rehearse in the Shire Hall ballroom on Thursday evening?"


async def cli(bot: Bot, world: GraphWorld, *args: str) -> tuple[int, str, str]:
    """`cli.py` beside the running bot, with the bot's database and Graph settings."""
    env = {**graph_mail_env(world), "DATABASE_URL": bot.settings.database_url, "MODERATORS_ADDRESS": ""}
    return await run_cli(*args, env=env)


def with_ref(world: GraphWorld, ref: str) -> list[dict[str, Any]]:
    return [m for m in world.graph.messages() if f"[{ref}]" in m["subject"]]


async def test_export_lists_and_erase_deletes_the_persons_mailbox_messages_and_names_what_it_could_not(
    mail_bot: Bot, graph_world: GraphWorld
) -> None:
    graph = graph_world.graph
    jo = mail_bot.channel.new_user("Jo Bloggs", email=JO_EMAIL)
    await mail_bot.say(jo, OFF_TOPIC)
    [forward] = await eventually(lambda: resolved([m for m in graph.sent_items() if "[Q-1]" in m["subject"]]),
                                 what="Jo's question forwarded")
    graph.deliver_to_inbox("moderator.one@council.example", f"RE: {forward['subject']}", text="Yes, on 12 December.",
                           in_reply_to=forward["internetMessageId"])
    await mail_bot.channel.connector.wait_for(2, timeout=20)  # the reference, then the answer
    jos_mail = graph.deliver_to_inbox(JO_EMAIL, "Bike shed", text=JO_MAILED, sender_name="Jo Bloggs")
    await eventually(lambda: resolved([m for m in graph.sent_items() if JO_EMAIL in str(m["toRecipients"])]),
                     what="Jo's mailed question acknowledged by mail")
    await eventually(lambda: resolved(with_ref(graph_world, "Q-2")), what="Jo's mailed question forwarded")
    await mail_bot.say(mail_bot.channel.new_user("Sam Other"), SAM_QUESTION)
    await eventually(lambda: resolved([m for m in graph.sent_items() if "[Q-3]" in m["subject"]]),
                     what="Sam's question forwarded")
    await mail_bot.drained()
    sams = {m["id"] for m in with_ref(graph_world, "Q-3")}
    jos = {m["id"] for m in graph.messages()} - sams
    assert jos_mail in jos and len(jos) >= 6  # forwards, their copies, the reply, Jo's mail, its answer

    code, out, err = await cli(mail_bot, graph_world, "subject", "export", "--user", JO_EMAIL)
    assert (code, err) == (0, "")
    listed = json.loads(out)["mail_kept"]
    assert {m["id"] for m in listed} == jos
    assert {m["where"] for m in listed} == {"shared mailbox"}

    graph.fail_next("POST */permanentDelete", status=403)
    code, out, err = await cli(mail_bot, graph_world, "subject", "erase", "--user", JO_EMAIL, "--yes", "--mailbox")
    assert code == 1, out
    [refused] = [m for m in graph.messages() if m["id"] in jos]
    said = f"Error: could not delete from the shared mailbox: {refused['subject']} ({refused['id']})"
    assert err.splitlines()[-1] == said  # after the Graph library's own log line
    assert f"  mail_deleted: {len(jos) - 1}" in out
    assert {m["id"] for m in graph.messages()} == {refused["id"]} | sams

