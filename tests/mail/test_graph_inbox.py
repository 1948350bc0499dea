"""GraphInbox delta sync and tagging, against the local Graph server (page size 2)."""

from __future__ import annotations

from mail.base import OutgoingMail
from mail.graph import GraphClient, GraphMailTransport
from mail.graph_inbox import GraphInbox
from mail.inbound import MAX_BODY_CHARS, is_automatic, question_ref, references_of, reply_text
from tests.support.graph import GraphWorld


def deliver(world: GraphWorld, n: int) -> list[str]:
    return [
        world.graph.deliver_to_inbox(
            f"colleague{i}@council.example",
            f"Question {i}",
            text=f"Body {i}",
            message_id=f"<m{i}@council.example>",
        )
        for i in range(n)
    ]


def delta_gets(world: GraphWorld) -> int:
    return len(world.graph.graph_requests("GET", "/delta"))


async def test_sync_reads_every_page_once_and_returns_a_delta_link(
    world: GraphWorld, client: GraphClient
) -> None:
    deliver(world, 5)
    inbox = GraphInbox(client)

    page = await inbox.sync(None)

    assert sorted(m.internet_message_id for m in page.mails) == [
        f"<m{i}@council.example>" for i in range(5)
    ]
    assert delta_gets(world) == 3  # 2 + 2 + 1 per page
    assert page.delta_link.startswith(world.graph.base_url) and "$deltatoken" in page.delta_link
    assert not page.resynced
    first = page.mails[0]
    assert first.sender == "colleague0@council.example" and first.text == ""  # bodies are read one by one
    assert (await inbox.read_body(page.items[0])).text == "Body 0"
    assert first.headers["message-id"] == "<m0@council.example>"
    assert all(key == key.lower() for key in first.headers)

    again = await inbox.sync(page.delta_link)
    assert again.items == ()

    world.graph.deliver_to_inbox(
        "late@council.example", "Late one", text="x", message_id="<late@council.example>"
    )
    later = await inbox.sync(again.delta_link)
    assert [m.internet_message_id for m in later.mails] == ["<late@council.example>"]


async def test_repeated_page_after_lost_response_gives_each_mail_once(
    world: GraphWorld, client: GraphClient
) -> None:
    deliver(world, 5)
    # the second page's response is lost after the server produced it; the client asks again
    world.graph.fail_next("GET */delta", drop=True, after=True, skip=1)
    world.graph.fail_next("GET */delta", status=503, skip=1)

    page = await GraphInbox(client).sync(None)

    ids = [m.internet_message_id for m in page.mails]
    assert len(ids) == len(set(ids)) == 5


async def test_changed_mail_comes_again_until_tagged(
    world: GraphWorld, client: GraphClient
) -> None:
    ids = deliver(world, 3)
    inbox = GraphInbox(client)
    page = await inbox.sync(None)

    world.graph.touch(ids[0])  # e.g. a moderator opened it
    again = await inbox.sync(page.delta_link)
    assert [m.internet_message_id for m in again.mails] == ["<m0@council.example>"]

    await inbox.mark_processed(again.items[0].graph_id)
    world.graph.touch(ids[0])
    third = await inbox.sync(again.delta_link)
    assert third.items == () and third.skipped_processed == 1


async def test_expired_delta_token_resyncs_from_scratch(
    world: GraphWorld, client: GraphClient
) -> None:
    deliver(world, 3)
    inbox = GraphInbox(client)
    page = await inbox.sync(None)
    await inbox.mark_processed(page.items[0].graph_id)
    world.graph.expire_delta_tokens()
    world.graph.deliver_to_inbox(
        "new@council.example", "New", text="n", message_id="<new@council.example>"
    )

    resync = await inbox.sync(page.delta_link)

    assert resync.resynced
    assert sorted(m.internet_message_id for m in resync.mails) == [
        "<m1@council.example>",
        "<m2@council.example>",
        "<new@council.example>",
    ]
    assert any(r.status == 410 for r in world.graph.requests)
    follow_up = await inbox.sync(resync.delta_link)
    assert follow_up.items == () and not follow_up.resynced


async def test_removed_entries_are_reported_not_returned(
    world: GraphWorld, client: GraphClient
) -> None:
    ids = deliver(world, 2)
    inbox = GraphInbox(client)
    page = await inbox.sync(None)
    world.graph.remove_from_inbox(ids[1])

    after = await inbox.sync(page.delta_link)

    assert after.items == () and after.removed == (ids[1],)


async def test_mark_processed_adds_the_category_once(
    world: GraphWorld, client: GraphClient
) -> None:
    (gid,) = deliver(world, 1)
    inbox = GraphInbox(client)

    await inbox.mark_processed(gid)
    await inbox.mark_processed(gid)

    assert world.graph.message(gid)["categories"] == ["Bot: handled"]
    assert len(world.graph.graph_requests("PATCH")) == 1


async def test_threading_headers_come_from_properties_when_delta_omits_headers(
    world: GraphWorld, client: GraphClient
) -> None:
    world.graph.delta_omits_headers = True
    world.graph.deliver_to_inbox(
        "hr@council.example",
        "RE: [Q-42] Mileage",
        text="Yes you can.\n\n> quoted",
        message_id="<answer@council.example>",
        in_reply_to="<fwd-42@council.example>",
        references=("<q@council.example>", "<fwd-42@council.example>"),
    )

    inbox = GraphInbox(client)
    (item,) = (await inbox.sync(None)).items
    mail = await inbox.read_body(item)

    assert mail.in_reply_to == "<fwd-42@council.example>"
    assert references_of(mail) == ("<fwd-42@council.example>", "<q@council.example>")
    assert mail.headers["in-reply-to"] == "<fwd-42@council.example>"
    assert question_ref(mail.subject) == 42
    assert reply_text(mail) == "Yes you can."


async def test_bots_own_forward_to_the_mailbox_is_recognised(
    world: GraphWorld, client: GraphClient
) -> None:
    await GraphMailTransport(client).send(
        OutgoingMail(key="fwd-1", to=(world.mailbox,), subject="[Q-1] hi", text="question")
    )

    (mail,) = (await GraphInbox(client).sync(None)).mails

    assert is_automatic(mail) == "sent by this bot (X-Bot-Key)"


async def test_a_large_mail_is_read_only_up_to_the_bound(world: GraphWorld, client: GraphClient) -> None:
    """Of a 10 MB mail only the first MAX_MIME_BYTES are downloaded and parsed."""
    world.graph.deliver_to_inbox(
        "colleague@council.example", "Long", text="The answer is yes.\n" + "filler line\n" * 1_000_000
    )
    inbox = GraphInbox(client)
    (item,) = (await inbox.sync(None)).items
    mail = await inbox.read_body(item)
    assert mail.text.startswith("The answer is yes.\n") and len(mail.text) <= MAX_BODY_CHARS
    assert reply_text(mail).startswith("The answer is yes.")
