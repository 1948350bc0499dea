"""Teams as a chat channel (handlers.channels.Channel): everything Teams-specific the handlers
rely on, behind the seam. An address is botbuilder's conversation reference, as stored JSON."""

from __future__ import annotations

from bot.sender import PersonalChats, TeamsConnector, TeamsDirectory, TeamsSender, chat_itself, is_personal
from domain.jobs import ChatReply
from domain.replies import Reply
from handlers.channels import Address, Contact

SPEAKER = "user"  # the member of a conversation reference naming who sent the activity


class TeamsChannel:
    """Sends through the Bot Connector (as outbox jobs: see bot.sender), looks people up in the
    conversation's roster, and opens 1:1 chats proactively."""

    def __init__(self, connector: TeamsConnector, tenants: frozenset[str] = frozenset()) -> None:
        self._sender = TeamsSender(connector)
        self._directory = TeamsDirectory(connector, tenants)
        self._personal_chats = PersonalChats(connector)

    async def send(self, address: Address, message: Reply, *, reply_to_id: str | None = None,
                   personal: bool = False) -> None:
        # already the 1:1 chat: a reply in it, as any
        await self._sender.send(ChatReply(address, message, reply_to_id, personal and not is_personal(address)))

    async def post(self, address: Address, message: Reply) -> str:
        return await self._sender.post(address, message)

    async def update(self, address: Address, message_id: str, message: Reply) -> None:
        await self._sender.update(address, message_id, message)

    async def look_up(self, address: Address, user_id: str) -> Contact | None:
        return await self._directory.lookup(address, user_id)

    async def open_personal(self, address: Address) -> Address | None:
        return await self._personal_chats.open(address)

    def is_personal(self, address: Address) -> bool:
        return is_personal(address)

    def for_keeping(self, address: Address) -> Address:
        # posting there needs the conversation, service URL and bot, never who typed the command
        return {part: value for part, value in address.items() if part != SPEAKER}

    def chat_itself(self, address: Address) -> Address:
        return chat_itself(address)

    def same_chat(self, address: Address, other: Address) -> bool:
        return bool(chat_itself(address)["conversation"]["id"] == chat_itself(other)["conversation"]["id"])
