"""Load a mask predictor and its tokenizer from a local directory or a hub name.

- LLaDA-format checkpoints (`model_type: "llada"`) load into the native module
  (`models/llada.py`) without remote code.
- Remote code (the Python files a checkpoint ships, reached through `auto_map` in its config) runs
  only where the user opted in with `model.trust_remote_code: true` (`dllmrl generate
  --trust-remote-code`), with one built-in exception: Dream (`model_type: "Dream"`), whose modeling
  and tokenizer code `models/dream.py` loads and repairs. A LLaDA checkpoint needs none (the native
  module and LLaDAConfig stand in for its `modeling_llada.py` and `configuration_llada.py`).
  Anything else that needs its own code (LLaDA with `native=False`, any other model with an
  `auto_map`) is refused with one line naming `model.trust_remote_code`, before any of it is imported.
- Dream's shifted logits and padding convention are switched on from its `model_type`, and its
  code gets the repairs it needs under transformers 5 (`models/dream.py`); the end-of-turn id is
  `<|eot_id|>` (LLaDA) or `<|im_end|>` (Dream, Qwen).
- Precision: bf16 on GPU, fp32 on CPU, unless `dtype` says otherwise.
- `quantize="nf4"`: the frozen base in 4-bit NormalFloat with double quantisation and compute in the
  precision above, as d1 loads LLaDA-8B (bitsandbytes, the optional `nf4` extra); the LM head,
  embeddings and norms stay in that precision, LoRA adapters in fp32.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from dllmrl_core.models import dream
from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM
from dllmrl_core.models.predictor import MaskPredictor

_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
EOT_TOKENS = ("<|eot_id|>", "<|im_end|>")  # end of turn: LLaDA (Llama-3 headers), Dream (ChatML, as Qwen)


def parse_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, or a one-line ValueError (torch's own is a multi-line RuntimeError)."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a torch device (cpu, cuda, cuda:N)") from None


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device`, or cuda when there is one and cpu otherwise; a CUDA device this machine lacks is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = parse_device(device)
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def max_positions(raw: dict[str, Any]) -> int | None:
    """The longest sequence (prompt + completion) the checkpoint's config.json allows: LLaDA's
    `max_sequence_length`, else `max_position_embeddings` (Dream, most transformers models)."""
    for key in ("max_sequence_length", "max_position_embeddings"):
        if isinstance(raw.get(key), int) and not isinstance(raw.get(key), bool):
            return raw[key]
    return None


def remote_code_refused(source: str, what: str) -> ValueError:
    """The one-line error for a checkpoint whose own code would have to run without the user's opt-in."""
    return ValueError(f"{source}: {what} runs the checkpoint's own Python code (auto_map); set "
                      "model.trust_remote_code: true (dllmrl generate: --trust-remote-code) if you trust it")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPU (what LLaDA-8B is trained and served in), fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def is_local(name_or_path: str | Path) -> bool:
    """A path that exists, or one that cannot be a hub name (absolute, ./, ~, several slashes)."""
    text = str(name_or_path)
    return Path(text).expanduser().exists() or not _HUB_NAME.match(text)


def check_checkpoint_dir(path: str | Path) -> Path:
    """Return the directory if it holds config.json and every weight file it refers to;
    otherwise raise FileNotFoundError naming the missing path."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"missing checkpoint file: {root / 'config.json'}")
    for index_name in _INDEX_FILES:
        index = root / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            for shard in shards:
                if not (root / shard).is_file():
                    raise FileNotFoundError(f"missing checkpoint file: {root / shard} (listed in {index})")
            return root
    if not any((root / w).is_file() for w in _WEIGHT_FILES):
        raise FileNotFoundError(f"missing checkpoint file: {root / _WEIGHT_FILES[0]} (no weights in {root})")
    return root


def read_config_json(name_or_path: str | Path) -> dict[str, Any]:
    """The raw config.json of a local directory or a hub repository (no remote code runs)."""
    if is_local(name_or_path):
        return json.loads((check_checkpoint_dir(name_or_path) / "config.json").read_text())
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(str(name_or_path), "config.json")).read_text())
    except Exception as err:  # offline, unknown repo, gated, ...
        raise FileNotFoundError(
            f"model {name_or_path!r}: not a local directory and not loadable from the hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from None


def load_mask_predictor(
    name_or_path: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    native: bool | None = None,
    tokenizer: Any = None,
    quantize: str | None = None,
    trust_remote_code: bool = False,
) -> MaskPredictor:
    """Load any supported checkpoint behind the `MaskPredictor` interface.

    native: None = native module for LLaDA-format checkpoints, remote code otherwise;
            True forces the native module (fails for other architectures); False forces remote code.
    tokenizer: optional; used for special ids the config lacks (mask, EoT).
    quantize: None, or "nf4" for a 4-bit base (see the module docstring).
    trust_remote_code: run the checkpoint's own modeling code where it has some (`model.trust_remote_code`);
            Dream's is built in (module docstring).
    """
    raw = read_config_json(name_or_path)
    source = str(Path(name_or_path).expanduser()) if is_local(name_or_path) else str(name_or_path)
    model_type = str(raw.get("model_type", "")).lower()
    use_native = native if native is not None else model_type == "llada"
    if not use_native and model_type != dream.MODEL_TYPE and "auto_map" in raw and not trust_remote_code:
        raise remote_code_refused(source, f"model_type {raw.get('model_type')!r} without the native module")
    dev = resolve_device(device)
    dt = dtype or default_dtype(dev)
    quantized = quantization(quantize, dev, dt)
    if use_native:
        if model_type != "llada":
            raise ValueError(f"{source}: model_type {raw.get('model_type')!r} has no native module (use native=False)")
        model, info = LLaDAModelLM.from_pretrained(source, config=LLaDAConfig.from_dict(raw), dtype=dt,
                                                   output_loading_info=True, **quantized)
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if bad:  # transformers would silently re-initialise what is missing: never train on that
            kind, keys = next(iter(bad.items()))
            raise ValueError(f"{source}: checkpoint does not match the LLaDA layout, {kind}: {sorted(keys)[:4]}")
    elif model_type == dream.MODEL_TYPE:
        model = dream.load_dream(source, raw, dtype=dt, **quantized)
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code, dtype=dt, **quantized)
    if quantized:
        one_weight_layout(model)
    else:
        model.to(dev)
    model.eval()
    is_dream = model_type == dream.MODEL_TYPE
    return MaskPredictor(model=model, **special_ids(raw, tokenizer, source), shift_logits=is_dream,
                         dream_inputs=is_dream)


def quantization(quantize: str | None, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """from_pretrained arguments that load the base 4-bit (d1's BitsAndBytesConfig), or none."""
    if quantize is None:
        return {}
    if quantize != "nf4":
        raise ValueError(f"model.quantize: {quantize!r} is not supported (valid: nf4)")
    try:
        from transformers import BitsAndBytesConfig

        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ValueError("model.quantize: nf4 needs bitsandbytes (pip install -e '.[nf4]')") from None
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_compute_dtype=dtype)
    return {"quantization_config": config, "device_map": {"": str(device)}}


def one_weight_layout(model: torch.nn.Module) -> None:
    """On CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit weight into an inference-only layout the
    first time it runs in eval mode without gradient, and never back: the learner's backward through
    it then silently drops gradients. Sampling and learning share one model, so keep the one layout
    that does both (the repack is a CPU inference speed-up; GPUs have no such path)."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def special_ids(raw: dict[str, Any], tokenizer: Any, source: str) -> dict[str, int | None]:
    """mask / eos / eot / pad ids from config.json, falling back to the tokenizer (end of turn: the first of
    EOT_TOKENS the tokenizer knows)."""

    def first(value):
        return value[0] if isinstance(value, (list, tuple)) else value

    tok = tokenizer
    mask_id = raw.get("mask_token_id", getattr(tok, "mask_token_id", None))
    if mask_id is None:
        raise ValueError(f"{source}: no mask token id (config.json mask_token_id, or a tokenizer with a mask token)")
    eos_id = first(raw.get("eos_token_id", getattr(tok, "eos_token_id", None)))
    pad_id = first(raw.get("pad_token_id", getattr(tok, "pad_token_id", None)))
    eot_id = raw.get("eot_token_id")
    if eot_id is None and tok is not None:
        known = [i for i in map(tok.convert_tokens_to_ids, EOT_TOKENS) if i not in (None, tok.unk_token_id)]
        eot_id = known[0] if known else None
    return {"mask_id": int(mask_id), "eos_id": eos_id, "eot_id": eot_id, "pad_id": pad_id}


def load_tokenizer(name_or_path: str | Path, *, trust_remote_code: bool = False):
    """The checkpoint's tokenizer, left-padding (prompts are left-padded for batched sampling).

    The checkpoint's own code (an `auto_map` in tokenizer_config.json, as Dream's
    tokenization_dream.py, or in config.json, which AutoTokenizer would read through AutoConfig) runs
    for Dream or with `trust_remote_code` (`model.trust_remote_code`); otherwise such a tokenizer is a
    one-line error. A LLaDA checkpoint's config is read with the native LLaDAConfig, never its
    `configuration_llada.py` (LLaDA's tokenizer is a plain PreTrainedTokenizerFast).
    """
    from transformers import AutoTokenizer

    tok_raw = {}
    if is_local(name_or_path):
        root = Path(name_or_path).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"tokenizer directory not found: {root}")
        raw = json.loads((root / "config.json").read_text()) if (root / "config.json").is_file() else {}
        tok_path = root / "tokenizer_config.json"
        tok_raw = json.loads(tok_path.read_text()) if tok_path.is_file() else {}
    else:
        raw = read_config_json(name_or_path)
    model_type = str(raw.get("model_type", "")).lower()
    # transformers has no "llada" type of its own: the native config stands in for the checkpoint's code
    kwargs = {"config": LLaDAConfig.from_dict(raw)} if model_type == "llada" else {}
    needs_code = "auto_map" in tok_raw or ("auto_map" in raw and not kwargs)
    if needs_code and not trust_remote_code and model_type != dream.MODEL_TYPE:
        raise remote_code_refused(str(name_or_path), "its tokenizer")
    tok = AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=needs_code, **kwargs)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def encode_prompts(tokenizer, texts: list[str], *, chat: bool = True, prefill: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Render prompts (one user turn through the chat template, then `prefill`), left-pad them.

    Returns ids [B, P] int64 and attention mask [B, P] bool (True = real token).
    """
    if chat:
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True,
                                               tokenize=False) for t in texts]
    texts = [t + prefill for t in texts]
    enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"].bool()
