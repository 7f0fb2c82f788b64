"""The emulated vLLM worker: ``/v2/{endpoint}/openai/v1/...`` for endpoints whose template sets ``MODEL_NAME``.

It reads the template's env as RunPod's vLLM worker does (``MODEL_NAME``, ``TOKENIZER_NAME``, ``ENABLE_LORA``, ``LORA_MODULES``)
and answers honestly: the base model (a local folder, or a repo from ``HF_ENDPOINT``) with the adapter loaded
through PEFT, on this CPU, greedy. ``model=<MODEL_NAME>`` answers with the adapter disabled, ``model=<lora
name>`` with it. The first request pays ``faults.cold_start_s`` and starts one billed worker, which ends when
the endpoint is deleted. Routes: ``GET openai/v1/models``, ``POST openai/v1/chat/completions``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.testing.runpod_emulator.serverless import Serverless, Worker, _new_id

if TYPE_CHECKING:
    from unsloth_nb.testing.runpod_emulator.serverless_api import JobApiHandler


def answer(handler: JobApiHandler, serverless: Serverless, endpoint_id: str, rest: list[str], method: str, raw: bytes) -> None:
    endpoint = serverless.endpoints[endpoint_id]
    env = serverless.templates[endpoint.template_id].env
    if "MODEL_NAME" not in env:
        handler.send_json(404, {"error": "this endpoint is not a vLLM worker (no MODEL_NAME)"})
        return
    loras = json.loads(env.get("LORA_MODULES") or "[]") if env.get("ENABLE_LORA", "").lower() == "true" else []
    names = [env["MODEL_NAME"], *(str(m["name"]) for m in loras)]
    if rest == ["v1", "models"] and method == "GET":
        handler.send_json(200, {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "vllm"} for n in names]})
        return
    if rest != ["v1", "chat", "completions"] or method != "POST":
        handler.send_json(404, {"error": {"message": f"no route {'/'.join(rest)}", "type": "not_found"}})
        return
    body = json.loads(raw or b"{}")
    if body.get("model") not in names:
        handler.send_json(
            404, {"error": {"message": f"model {body.get('model')!r} not found; served: {names}", "type": "NotFoundError"}}
        )
        return
    model, tokenizer, lora = _model(serverless, endpoint_id, env, loras)
    serverless.chat_requests.append(str(body["model"]))
    text = _generate(model, tokenizer, body, use_adapter=body["model"] != env["MODEL_NAME"] and lora is not None)
    handler.send_json(
        200,
        {
            "id": "chatcmpl-" + _new_id(""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        },
    )


def _model(
    serverless: Serverless, endpoint_id: str, env: dict[str, str], loras: list[dict[str, Any]]
) -> tuple[Any, Any, str | None]:
    with serverless.served_lock:
        if endpoint_id in serverless.served_models:
            return serverless.served_models[endpoint_id]
        if serverless.faults.cold_start_s:
            time.sleep(serverless.faults.cold_start_s)
        with serverless.lock:  # the worker that cold-started: billed until the endpoint is deleted
            endpoint = serverless.endpoints[endpoint_id]
            worker = Worker(_new_id("wk"), endpoint_id, endpoint.gpu_type_ids[0], time.time())
            serverless.workers[worker.id] = worker
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base = _local(env["MODEL_NAME"])
        tokenizer = AutoTokenizer.from_pretrained(_local(env.get("TOKENIZER_NAME") or env["MODEL_NAME"]))
        model: Any = AutoModelForCausalLM.from_pretrained(base)
        lora = None
        if loras:
            from peft import PeftModel

            lora = str(loras[0]["name"])
            model = PeftModel.from_pretrained(model, _local(str(loras[0]["path"])), adapter_name=lora)
        model.eval()
        serverless.served_models[endpoint_id] = (model, tokenizer, lora)
        return serverless.served_models[endpoint_id]


def _local(name: str) -> str:
    if Path(name).exists():
        return name
    from huggingface_hub import snapshot_download

    return snapshot_download(name)


def _generate(model: Any, tokenizer: Any, body: dict[str, Any], *, use_adapter: bool) -> str:
    import contextlib

    import torch

    messages = body.get("messages") or []
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
    inputs = tokenizer(prompt, return_tensors="pt")
    limit = max(1, min(int(body.get("max_tokens") or 64), 256))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    base_only = model.disable_adapter() if (not use_adapter and hasattr(model, "disable_adapter")) else contextlib.nullcontext()
    with torch.no_grad(), base_only:
        output = model.generate(**inputs, max_new_tokens=limit, do_sample=False, pad_token_id=pad)
    return str(tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True))
