"""Fine-tune a model with TRL's SFTTrainer on one of our exported files; run by tests/test_trainer_trl.py.

Runs in the training venv (torch, transformers, trl; `.ci/train_env.sh`), not in the project's venv:
    python tests/trl_train.py --model DIR --data FILE --out RESULT.json [--steps 24] [--max-length 96]
It trains on CPU, then writes RESULT.json: the loss of every optimizer step, the wall time, and for the first rows
the token positions the collator's labels keep (not -100) beside the positions of the assistant's answer found
by rendering the row's prompt and the whole row with the chat template. For `messages.jsonl` rows the loss is
restricted to assistant turns by a copy of the model's template with `{% generation %}` markers (`--assistant-only`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

IGNORE = -100
MASK_ROWS = 8
# SmolLM2's ChatML template with the assistant's answer and end-of-turn inside {% generation %}, so TRL can mark
# assistant tokens of `messages` rows. It renders the same text as the model's own template (checked below).
TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>\\n' }}{% endgeneration %}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-layers", type=int, default=2,
                        help="train only the last N decoder layers and the final norm (0: every weight)")
    parser.add_argument("--assistant-only", action="store_true")
    return parser.parse_args()


def conversation_parts(row: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(prompt turns, whole conversation) of a prompt-completion or messages row."""
    if "messages" in row:
        return row["messages"][:-1], row["messages"]
    return row["prompt"], row["prompt"] + row["completion"]


def ids_of(tokenizer: Any, turns: list[dict[str, str]], **options: Any) -> list[int]:
    rendered = tokenizer.apply_chat_template(turns, tokenize=True, return_dict=True, **options)
    return list(rendered["input_ids"])


def source_row(input_ids: list[int], rendered: list[tuple[list[int], dict[str, Any]]]) -> dict[str, Any]:
    """The exported row a tokenized training example came from (TRL drops rows whose answer is cut off entirely)."""
    for whole_ids, row in rendered:
        if whole_ids[: len(input_ids)] == input_ids:
            return row
    raise SystemExit(f"no exported row renders to the training example {input_ids[:12]}...")


def answer_positions(tokenizer: Any, row: dict[str, Any], length: int) -> list[int]:
    """Token positions of the final assistant turn, from the template alone: the prompt's length onward."""
    prompt, _ = conversation_parts(row)
    return list(range(len(ids_of(tokenizer, prompt, add_generation_prompt=True)), length))


def mask_report(trainer: SFTTrainer, tokenizer: Any, rows: list[dict[str, Any]]) -> list[dict]:
    """What the collator's labels keep for the first examples, beside what the template says the answer is."""
    rendered = [(ids_of(tokenizer, conversation_parts(row)[1]), row) for row in rows]
    count = min(MASK_ROWS, len(trainer.train_dataset))
    batch = trainer.data_collator([trainer.train_dataset[index] for index in range(count)])
    report = []
    for index in range(count):
        input_ids, labels = batch["input_ids"][index].tolist(), batch["labels"][index].tolist()
        attention = batch["attention_mask"][index].tolist() if "attention_mask" in batch else [1] * len(input_ids)
        real = [position for position, bit in enumerate(attention) if bit]
        tokens = [input_ids[position] for position in real]
        row = source_row(tokens, rendered)
        kept = [offset for offset, position in enumerate(real) if labels[position] != IGNORE]
        report.append({
            "row": row,
            "kept_positions": kept,
            "answer_positions": answer_positions(tokenizer, row, len(tokens)),
            "labels_equal_inputs": all(labels[p] == input_ids[p] for p in real if labels[p] != IGNORE),
            "padding_labelled": sum(1 for p, label in enumerate(labels) if label != IGNORE and not attention[p]),
            "kept_text": tokenizer.decode([input_ids[p] for p in real if labels[p] != IGNORE]),
            "masked_text": tokenizer.decode([input_ids[p] for p in real if labels[p] == IGNORE]),
        })
    return report


def check_training_template(tokenizer: Any, rows: list[dict[str, Any]]) -> None:
    """The generation-marked copy must render exactly what the model's own template renders."""
    for row in rows[:MASK_ROWS]:
        _, whole = conversation_parts(row)
        own = tokenizer.apply_chat_template(whole, tokenize=False)
        ours = tokenizer.apply_chat_template(whole, tokenize=False, chat_template=TRAINING_TEMPLATE)
        if own != ours:
            raise SystemExit(f"the training template renders differently:\n{own!r}\n{ours!r}")


def freeze_all_but_last(model: Any, layers: int) -> int:
    """Leave the last `layers` decoder layers and the final norm trainable; return the trainable weight count.

    On two CPU cores a full backward pass of 135M weights costs about a minute a step under load; with the lower
    layers frozen, backpropagation stops early and the optimizer updates a few million weights. The trainer, its
    data pipeline, masks and loss are the same as in a full fine-tune.
    """
    if layers <= 0:
        return sum(weight.numel() for weight in model.parameters())
    for weight in model.parameters():
        weight.requires_grad_(False)
    for module in [*model.model.layers[-layers:], model.model.norm]:
        for weight in module.parameters():
            weight.requires_grad_(True)
    return sum(weight.numel() for weight in model.parameters() if weight.requires_grad)


def main() -> int:
    args = parse_args()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    dataset = load_dataset("json", data_files=str(args.data), split="train")
    rows = dataset.to_list()
    if args.assistant_only:
        check_training_template(tokenizer, rows)
        tokenizer.chat_template = TRAINING_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(str(args.model), dtype=torch.float32)
    trainable = freeze_all_but_last(model, args.train_layers)
    config = SFTConfig(
        output_dir=str(args.out.parent / "trl-output"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
        max_length=args.max_length, assistant_only_loss=args.assistant_only, save_strategy="no", report_to="none",
        use_cpu=True, seed=0, disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    masks = mask_report(trainer, tokenizer, rows)
    started = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result = {"steps": trainer.state.global_step, "losses": losses, "train_seconds": round(seconds, 1),
              "rows": len(rows), "examples": len(trainer.train_dataset), "trainable_weights": trainable, "completion_only_loss": trainer.completion_only_loss, "masks": masks}
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
