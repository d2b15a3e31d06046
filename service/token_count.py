"""A prompt's size in the model's own tokens: exact for a whole chat, through the chat template; and per
message, the estimate the prompt builder sums so that fitting a long conversation stays linear."""

from pathlib import Path
from typing import Any

from ragserve.chat_tokens import chat_token_ids
from ragserve.service.prompt import Message

__all__ = ["ChatTokenCounter"]


class ChatTokenCounter:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        # What the template adds around one message (role markers, separators), measured once.
        probe = [Message("system", "x"), Message("user", "x")]
        [content] = self._contents(probe[1:])
        self._per_message = max(0, self.chat(probe) - self.chat(probe[:1]) - content)

    @classmethod
    def load(cls, model_dir: Path) -> "ChatTokenCounter":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(model_dir)))

    def chat(self, messages: list[Message]) -> int:
        """Exact: the prompt as vLLM will see it, with the assistant's turn opened."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return len(chat_token_ids(self._tokenizer, chat, add_generation_prompt=True))

    def each(self, messages: list[Message]) -> list[int]:
        """Estimates, one per message: its content's tokens plus the template's per-message tokens."""
        return [n + self._per_message for n in self._contents(messages)]

    def _contents(self, messages: list[Message]) -> list[int]:
        if not messages:
            return []
        # One batched call: per-message calls cost more in overhead than in tokenizing.
        encoded = self._tokenizer([m.content for m in messages], add_special_tokens=False)
        return [len(ids) for ids in encoded["input_ids"]]
