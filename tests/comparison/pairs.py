"""Builders for response bodies in each wire format, for crafted comparison pairs."""

from __future__ import annotations

from typing import Any

import orjson


def chat(content: str | None = "", *, ident: str = "chatcmpl-a", created: int = 1,
         tools: list[tuple[str, Any]] | None = None, finish: str = "stop",
         fingerprint: str = "fp_a", model: str = "gpt-4o-2024-08-06") -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tools:
        message["tool_calls"] = [
            {"id": f"call_{ident}_{i}", "type": "function",
             "function": {"name": name,
                          "arguments": args if isinstance(args, str) else orjson.dumps(
                              args).decode()}}
            for i, (name, args) in enumerate(tools)]
    return orjson.dumps({
        "id": ident, "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": fingerprint,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": created, "completion_tokens": 3, "total_tokens": 9}})


def anthropic(text: str = "", *, ident: str = "msg_a", tools: list[tuple[str, Any]] = (),
              stop: str = "end_turn") -> bytes:  # type: ignore[assignment]
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": f"toolu_{ident}_{i}", "name": name, "input": args}
                for i, (name, args) in enumerate(tools)]
    return orjson.dumps({"id": ident, "type": "message", "role": "assistant",
                         "model": "claude-sonnet-4-5", "content": content,
                         "stop_reason": stop, "stop_sequence": None,
                         "usage": {"input_tokens": 3, "output_tokens": 4}})


def responses(text: str = "", *, ident: str = "resp_a", created: int = 1,
              calls: list[tuple[str, Any]] = ()) -> bytes:  # type: ignore[assignment]
    output: list[dict[str, Any]] = []
    if text:
        output.append({"type": "message", "id": f"msg_{ident}", "status": "completed",
                       "role": "assistant", "content": [
                           {"type": "output_text", "text": text, "annotations": []}]})
    output += [{"type": "function_call", "id": f"fc_{ident}_{i}", "call_id": f"c{i}",
                "name": name, "arguments": orjson.dumps(args).decode()}
               for i, (name, args) in enumerate(calls)]
    return orjson.dumps({"id": ident, "object": "response", "created_at": created,
                         "status": "completed", "model": "gpt-4.1", "output": output,
                         "usage": {"input_tokens": 1, "output_tokens": 2}})


def sse(*payloads: Any, done: bool = True) -> bytes:
    body = b"".join(b"data: " + orjson.dumps(p) + b"\n\n" for p in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def chat_stream(pieces: list[str], *, ident: str = "chatcmpl-s", finish: str = "stop",
                tool: tuple[str, list[str]] | None = None, done: bool = True) -> bytes:
    chunks: list[Any] = []
    base = {"id": ident, "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    chunks.append({**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                "content": ""}}]})
    for piece in pieces:
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
    if tool:
        name, fragments = tool
        chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": name, "arguments": ""}}]}}]})
        for fragment in fragments:
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": fragment}}]}}]})
    if done:
        chunks.append({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": finish}]})
    return sse(*chunks, done=done)
