"""A bare model folder serves and evaluates exactly like its run.

Trains two tiny runs (two optimizer steps each): a ChatML one from the qwen2 fixture and a
LLaMA 3 one from scratch with a tokenizer given LLaMA 3's header tokens, both with a system
prompt full of characters a Jinja template must escape. Then, on a copy of each run's model
folder with nothing else beside it:

- transformers' apply_chat_template (the folder's tokenizer_config.json, no torch) renders
  byte for byte what `ctune template` renders, text and ids, with and without a system message,
  single- and multi-turn, with and without the generation prompt; without a system message the
  trained system prompt comes first;
- `ctune eval` gives the same summary on the bare folder as on the run's checkpoint (which
  reads the run's recipe), for intent data and, with the format guessed, dialogue data; without
  the folder's task files it does not (so the comparison can fail).

Run by tests/integration/run.sh (CTUNE, CT_SOURCE_DIR, CT_INTEGRATION_TMP)."""
import json
import os
import shutil
import subprocess
import sys

from transformers import AutoTokenizer

CTUNE = os.environ["CTUNE"]
SOURCE = os.environ["CT_SOURCE_DIR"]
TMP = os.environ["CT_INTEGRATION_TMP"]
FIXTURE = os.path.join(SOURCE, "tests/fixtures/models/qwen2")
SYSTEM = ('  你是客服助手。Say "hi" & don\'t {{ render }} this {% raw %} or \\n that\\\n'
          "second line\twith a tab  ")

failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def ctune(*args):
    result = subprocess.run([CTUNE, *args], cwd=SOURCE, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"ctune {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def train(name, *overrides):
    out = os.path.join(TMP, name)
    ctune("train", "recipes/full_finetune_intent_zh.yaml", "train.max_steps=2", "data.val=",
          f"data.system_prompt={SYSTEM}", f"output_dir={out}", *overrides)
    bare = os.path.join(TMP, name + "_bare")
    shutil.copytree(os.path.join(out, "model"), bare)  # a folder with nothing beside it
    return out, bare


CONVERSATIONS = {
    "single turn": [{"role": "user", "content": "我要退货"}],
    "single turn, own system": [{"role": "system", "content": "Answer briefly."},
                                {"role": "user", "content": "我要退货"}],
    "multi turn": [{"role": "user", "content": "你好，毛衣收到了"},
                   {"role": "assistant", "content": " 亲，需要换码吗？ "},
                   {"role": "user", "content": "那我不要了\n"}],
    "multi turn, own system": [{"role": "system", "content": " 只回答意图名称 "},
                               {"role": "user", "content": "查一下物流"},
                               {"role": "assistant", "content": "好的"},
                               {"role": "user", "content": "还没到"}],
}


def ctune_render(folder, messages, generation_prompt, system=None):
    path = os.path.join(TMP, "messages.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(messages, f, ensure_ascii=False)
    args = ["template", "--model", folder, "--messages", path, "--json"]
    if not generation_prompt:
        args.append("--no-generation-prompt")
    if system is not None:
        args += ["--system", system]
    return json.loads(ctune(*args))


def check_rendering(label, folder):
    tok = AutoTokenizer.from_pretrained(folder)
    for name, messages in CONVERSATIONS.items():
        for generation_prompt in (True, False):
            case = f"{label}, {name}, add_generation_prompt={generation_prompt}"
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            ours = ctune_render(folder, messages, generation_prompt)
            check(ours["text"] == text, f"{case}: ctune's text equals apply_chat_template's")
            check(ours["ids"] == ids, f"{case}: ctune's ids equal the tokenizer's ids of that text")
            if ours["text"] != text:
                print(f"  ctune:        {ours['text']!r}\n  transformers: {text!r}")
    # Without a system message, the trained prompt: the explicit system turn renders the same.
    user = CONVERSATIONS["single turn"]
    default = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    explicit = ctune_render(folder, [{"role": "system", "content": SYSTEM}] + user, True, system="")
    check(default == explicit["text"], f"{label}: no system message renders the training system prompt")
    check(SYSTEM.strip() in default, f"{label}: the system prompt's text is in the prompt")


def eval_summary(model, data, *extra):
    out = ctune("eval", "--model", model, "--data", data, "--max-examples", "24", *extra)
    line = [l for l in out.splitlines() if l.startswith("json ")][-1]
    summary = json.loads(line[5:])
    summary.pop("model")
    return summary


def check_eval(run, bare):
    checkpoint = os.path.join(run, "checkpoints", "step-00000002.h5")
    for data in ("datasets/data/intent_test.jsonl", "datasets/data/dialog_test.jsonl"):
        from_recipe = eval_summary(checkpoint, data)
        check(eval_summary(bare, data) == from_recipe, f"eval {data}: the bare folder equals the run's checkpoint")
        check(eval_summary(run, data) == from_recipe, f"eval {data}: the run folder equals the run's checkpoint")
    stripped = bare + "_stripped"
    shutil.copytree(bare, stripped)
    for name in ("ctune_task.json", "labels.json", "tokenizer_config.json"):
        os.remove(os.path.join(stripped, name))
    shutil.copy(os.path.join(FIXTURE, "tokenizer_config.json"), stripped)
    data = "datasets/data/intent_test.jsonl"
    check(eval_summary(stripped, data) != eval_summary(checkpoint, data),
          "control: without its task files the folder evaluates differently")


def llama3_tokenizer():
    """The fixture's tokenizer with LLaMA 3's four header tokens and a LLaMA 3 chat_template."""
    folder = os.path.join(TMP, "llama3_tokenizer")
    os.makedirs(folder)
    with open(os.path.join(FIXTURE, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = json.load(f)
    next_id = 1 + max(max(tokenizer["model"]["vocab"].values()), max(t["id"] for t in tokenizer["added_tokens"]))
    for i, content in enumerate(["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]):
        tokenizer["added_tokens"].append({"id": next_id + i, "content": content, "single_word": False,
                                          "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
              "eos_token": "<|eot_id|>", "pad_token": "<|endoftext|>",
              "chat_template": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
                               "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"}
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False)
    return folder


def main():
    run, bare = train("chatml", f"model.path={FIXTURE}", "tokenizer.path=")
    check_rendering("ChatML", bare)
    check_eval(run, bare)
    _, llama_bare = train("llama3", "model.path=", f"tokenizer.path={llama3_tokenizer()}", "model.arch=llama",
                          "model.hidden_size=32", "model.intermediate_size=64", "model.num_layers=1",
                          "model.num_heads=2", "model.num_kv_heads=1", "model.max_seq_len=256")
    check_rendering("LLaMA 3", llama_bare)
    print(f"{failures} check(s) failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
