"""Token ids of a chat as the model sees it, through its own chat template."""

from typing import Any

__all__ = ["chat_token_ids"]


def chat_token_ids(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False
) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt
    )
    # transformers 5 returns a BatchEncoding here; older versions a plain list of ids.
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
