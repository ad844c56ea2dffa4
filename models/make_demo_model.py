#!/usr/bin/env python3
"""Make FastGen's embedded demo model, `fastgen-demo-tiny`.

Usage (from the repository root; about 2-3 minutes on one H100, no network):

    PYTHONUNBUFFERED=1 python3 models/make_demo_model.py models/fastgen-demo-tiny [--steps N]

A ~2M-parameter Llama-architecture model trained for a short while on an offline English corpus
built from this Python's standard library: docstrings (read with `ast`, no module is imported),
the pydoc topic texts, the Zen of Python, and small ChatML question/answer pairs made from
docstring summaries. It writes config.json, model.safetensors (bfloat16), generation_config.json,
tokenizer.json, tokenizer_config.json (ChatML chat_template) and a README.md model card into
OUT_DIR. It is a demo model: it babbles vaguely Python-doc-like English and is useless for work.

Needs: torch, transformers (4.4x or 5.x), tokenizers, safetensors.
"""

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before torch initializes CUDA

import argparse
import ast
import codecs
import contextlib
import hashlib
import io
import json
import math
import platform
import random
import sysconfig
import time
import warnings

MODEL_NAME = "fastgen-demo-tiny"
SEED = 0

EOT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIALS = [EOT, IM_START, IM_END]
VOCAB_SIZE = 2048

HIDDEN, LAYERS, HEADS, KV_HEADS, INTER = 192, 4, 6, 2, 512
MAX_POS, ROPE_THETA, RMS_EPS = 1024, 10000.0, 1e-5

SEQ_LEN, BATCH = 256, 32
DEFAULT_STEPS = 1500
LR, MIN_LR_FRAC, WARMUP, WEIGHT_DECAY, GRAD_CLIP = 3e-3, 0.1, 100, 0.1, 1.0
VAL_FRACTION = 0.01

LLAMA3_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CHATML_TEMPLATE = (
    r"{% for message in messages %}"
    r"{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    r"{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

QUESTION_TEMPLATES = ["What does {n} do?", "Explain {n}.", "What is {n}?", "Describe {n} briefly."]

EXCLUDED_DIRS = {
    "test", "tests", "idlelib", "lib2to3", "turtledemo", "ensurepip", "site-packages",
    "dist-packages", "__pycache__", "encodings", "__phello__",
}


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------

def stdlib_dir():
    for key in ("stdlib", "platstdlib"):
        p = sysconfig.get_paths().get(key)
        if p and os.path.isdir(p):
            return p
    return os.path.dirname(os.__file__)


def stdlib_files(base):
    out = []
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and not d.startswith("config-")
                         and not d.startswith("."))
        for fn in sorted(files):
            if fn.endswith(".py"):
                out.append(os.path.join(root, fn))
    return out


def module_name(base, path):
    rel = os.path.relpath(path, base)[:-3].replace(os.sep, ".")
    if rel.endswith(".__init__"):
        rel = rel[: -len(".__init__")]
    return rel


def file_docs(path, modname):
    """[(qualified name, docstring)] for the module and every class/function in it."""
    try:
        with open(path, "rb") as f:
            src = f.read()
    except OSError:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(src, filename=path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return []
    out = []

    def doc(node):
        try:
            return ast.get_docstring(node, clean=True)
        except Exception:
            return None

    md = doc(tree)
    if md:
        out.append((modname, md))

    def visit(stmts, prefix):
        for st in stmts:
            if isinstance(st, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                q = prefix + st.name
                d = doc(st)
                if d:
                    out.append((q, d))
                visit(st.body, q + ".")
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    sub = getattr(st, field, None)
                    if isinstance(sub, list):
                        visit([x for x in sub if isinstance(x, ast.AST)], prefix)

    try:
        visit(tree.body, modname + ".")
    except RecursionError:
        pass
    return out


def zen_of_python():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import this  # noqa: F401  (prints the Zen on first import)
        return codecs.decode(this.s, "rot13")
    except Exception:
        return ""


def pydoc_topics():
    try:
        from pydoc_data.topics import topics
        return [topics[k].strip() for k in sorted(topics) if isinstance(topics[k], str)]
    except Exception:
        return []


def first_paragraph(d):
    para = d.strip().split("\n\n")[0]
    return " ".join(para.split())


def build_corpus():
    base = stdlib_dir()
    files = stdlib_files(base)
    named = []
    for p in files:
        named.extend(file_docs(p, module_name(base, p)))
    plain, seen = [], set()

    def add(t):
        t = t.strip()
        if len(t.split()) >= 3 and t not in seen:
            seen.add(t)
            plain.append(t)

    for _, d in named:
        add(d)
    n_doc = len(plain)
    for t in pydoc_topics():
        add(t)
    n_topics = len(plain) - n_doc
    zen = zen_of_python()
    if zen:
        add(zen)
    if len(plain) < 100:
        raise RuntimeError(f"corpus too small ({len(plain)} texts from {base}); no stdlib sources?")

    chat, seen_q = [], set()
    for q, d in named:
        if any(part.startswith("_") for part in q.split(".")) or q in seen_q:
            continue
        ans = first_paragraph(d)
        if not (20 <= len(ans) <= 500):
            continue
        seen_q.add(q)
        question = QUESTION_TEMPLATES[len(chat) % len(QUESTION_TEMPLATES)].format(n=q)
        chat.append(f"{IM_START}user\n{question}{IM_END}\n{IM_START}assistant\n{ans}{IM_END}\n")
    info = {"stdlib": base, "files": len(files), "docstrings": n_doc, "topics": n_topics,
            "zen": bool(zen), "chat_pairs": len(chat)}
    return plain, chat, info


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

def build_tokenizer(texts):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(SPECIALS), min_frequency=2,
                                  show_progress=False, special_tokens=[], initial_alphabet=alphabet)
    tok.train_from_iterator(texts, trainer=trainer)
    vocab = tok.get_vocab(with_added_tokens=True)
    if any(c not in vocab for c in alphabet):
        raise RuntimeError("byte-level vocab lacks some byte symbols")

    def special(s):
        try:
            return AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False,
                              special=True)
        except TypeError:
            return AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False)

    tok.add_special_tokens([special(s) for s in SPECIALS])
    n = tok.get_vocab_size(with_added_tokens=True)
    if n != VOCAB_SIZE:
        raise RuntimeError(f"tokenizer has {n} tokens, wanted {VOCAB_SIZE}")
    return tok


def write_tokenizer_files(tok, out_dir):
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    cfg = {
        "add_bos_token": False,
        "add_eos_token": False,
        "bos_token": None,
        "eos_token": EOT,
        "pad_token": EOT,
        "unk_token": None,
        "added_tokens_decoder": {
            str(tok.token_to_id(s)): {"content": s, "lstrip": False, "normalized": False,
                                      "rstrip": False, "single_word": False, "special": True}
            for s in SPECIALS
        },
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POS,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")


def render_chat(messages, add_generation_prompt=True):
    """Same output as the Jinja template above (kept in sync by a check in main)."""
    s = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return s + (f"{IM_START}assistant\n" if add_generation_prompt else "")


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

def tf_version_tuple():
    import transformers
    parts = []
    for p in transformers.__version__.split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


def effective_rope_theta(d):
    rp = d.get("rope_parameters")
    if isinstance(rp, dict) and "rope_theta" in rp:
        return rp["rope_theta"], rp.get("rope_type", rp.get("type", "default"))
    rs = d.get("rope_scaling")
    rtype = "default" if not isinstance(rs, dict) else rs.get("rope_type", rs.get("type", "default"))
    return d.get("rope_theta"), rtype


def make_config(eot_id):
    import transformers
    kw = dict(
        vocab_size=VOCAB_SIZE, hidden_size=HIDDEN, intermediate_size=INTER,
        num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POS, rms_norm_eps=RMS_EPS, hidden_act="silu",
        initializer_range=0.02, tie_word_embeddings=True, use_cache=True,
        bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=None,  # no padding_idx row
        attention_bias=False, mlp_bias=False,
    )
    if tf_version_tuple() >= (5, 0):
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": ROPE_THETA}
    else:
        kw["rope_theta"] = ROPE_THETA
        kw["rope_scaling"] = None
    cfg = transformers.LlamaConfig(**kw)
    theta, rtype = effective_rope_theta(cfg.to_dict())
    if theta is None or abs(float(theta) - ROPE_THETA) > 1e-6 or rtype != "default":
        raise RuntimeError(f"rope settings not kept: theta={theta} type={rtype}")
    if not cfg.to_dict().get("tie_word_embeddings", False):
        raise RuntimeError("tie_word_embeddings not kept")
    return cfg


def make_model(cfg, attn):
    import transformers
    try:
        return transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation=attn)
    except TypeError:
        return transformers.AutoModelForCausalLM.from_config(cfg)


def load_model(out_dir, device, dtype):
    import transformers
    kw = {"attn_implementation": "eager"}
    if tf_version_tuple() >= (4, 56):
        kw["dtype"] = dtype
    else:
        kw["torch_dtype"] = dtype
    m = transformers.AutoModelForCausalLM.from_pretrained(out_dir, **kw)
    return m.to(device=device, dtype=dtype).eval()


def generate(model, ids, n, device, stop_ids=(), temperature=0.0, gen=None):
    import torch
    ids = list(ids)
    out = []
    for _ in range(n):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids[-MAX_POS:]], device=device),
                           use_cache=False).logits[0, -1].float()
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1).cpu()
            nxt = int(torch.multinomial(probs, 1, generator=gen).item())
        else:
            nxt = int(torch.argmax(logits).item())
        out.append(nxt)
        ids.append(nxt)
        if nxt in stop_ids:
            break
    return out


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.time()

    random.seed(SEED)
    import numpy as np
    np.random.seed(SEED)
    import torch
    import torch.nn.functional as F
    torch.manual_seed(SEED)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(SEED)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception:
        pass
    torch.backends.cudnn.benchmark = False
    import tokenizers
    import transformers
    try:
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:
        pass
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    log(f"python {platform.python_version()} torch {torch.__version__} transformers "
        f"{transformers.__version__} tokenizers {tokenizers.__version__} device {device}"
        + (f" ({torch.cuda.get_device_name(0)})" if device == "cuda" else ""))

    # ---- corpus and tokenizer
    plain, chat, cinfo = build_corpus()
    blob = ("\n\n".join(plain) + "\n\n" + "".join(chat)).encode("utf-8")
    cinfo["chars"] = len(blob.decode("utf-8"))
    cinfo["sha256"] = hashlib.sha256(blob).hexdigest()
    log(f"corpus: {cinfo['files']} files, {cinfo['docstrings']} docstrings, {cinfo['topics']} pydoc "
        f"topics, {cinfo['chat_pairs']} chat pairs, {cinfo['chars']/1e6:.1f}M chars "
        f"({time.time()-t_start:.0f}s)")
    questions = [c.split(IM_END)[0].split("\n", 1)[1] for c in chat[:2000]]
    tok_texts = plain + [f"user\n{q}\nassistant\n" for q in questions]
    tok = build_tokenizer(tok_texts)
    eot_id, ims_id, ime_id = (tok.token_to_id(s) for s in SPECIALS)
    write_tokenizer_files(tok, out_dir)
    log(f"tokenizer: {tok.get_vocab_size(with_added_tokens=True)} tokens, {EOT}={eot_id} "
        f"{IM_START}={ims_id} {IM_END}={ime_id} ({time.time()-t_start:.0f}s)")

    # ---- token stream: documents in a fixed shuffled order, each followed by <|endoftext|>
    docs = plain + chat
    order = list(range(len(docs)))
    random.Random(SEED).shuffle(order)
    n_val = max(1, int(len(order) * VAL_FRACTION))
    val_idx, train_idx = order[:n_val], order[n_val:]

    def stream(idx):
        encs = tok.encode_batch([docs[i] for i in idx], add_special_tokens=False)
        ids = []
        for e in encs:
            ids.extend(e.ids)
            ids.append(eot_id)
        return torch.tensor(ids, dtype=torch.long)

    train_ids, val_ids = stream(train_idx), stream(val_idx)
    probe = tok.encode(chat[0], add_special_tokens=False).ids if chat else [ims_id]
    if ims_id not in probe or ime_id not in probe:
        raise RuntimeError("ChatML special tokens are not recognised inside the training text")
    log(f"tokens: train {train_ids.numel()/1e6:.2f}M, val {val_ids.numel()/1e3:.0f}K; "
        f"{args.steps} steps x {BATCH} x {SEQ_LEN} = {args.steps*BATCH*SEQ_LEN/1e6:.1f}M tokens "
        f"({args.steps*BATCH*SEQ_LEN/max(1, train_ids.numel()):.1f} epochs)")
    if val_ids.numel() < SEQ_LEN + 2:
        val_ids = train_ids[-(SEQ_LEN * 8):]

    # ---- model
    cfg = make_config(eot_id)
    torch.manual_seed(SEED)
    # eager attention: deterministic backward (SDPA's cuDNN/flash backward kernels are not)
    model = make_model(cfg, "eager").to(device)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params/1e6:.2f}M parameters (tied embeddings), "
        f"attn {getattr(model.config, '_attn_implementation', '?')}")

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.95), eps=1e-8,
                                fused=(device == "cuda"))
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < WARMUP:
            return LR * (step + 1) / WARMUP
        t = (step - WARMUP) / max(1, args.steps - WARMUP)
        return LR * (MIN_LR_FRAC + (1 - MIN_LR_FRAC) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    data_gen = torch.Generator().manual_seed(SEED)
    train_dev = train_ids.to(device)
    offs = torch.arange(SEQ_LEN + 1, device=device)

    def batch(src, gen):
        starts = torch.randint(0, src.numel() - SEQ_LEN - 1, (BATCH,), generator=gen)
        return src[starts.to(device)[:, None] + offs[None, :]]

    use_amp = device == "cuda" and torch.cuda.is_bf16_supported()
    amp_ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp \
        else (lambda: contextlib.nullcontext())

    def loss_of(x):
        with amp_ctx():
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))

    log_rows = []
    t_train = time.time()
    acc = torch.zeros((), device=device)
    acc_n = 0
    for step in range(args.steps):
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        x = batch(train_dev, data_gen)
        loss = loss_of(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        acc += loss.detach()
        acc_n += 1
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            avg = float(acc.item()) / acc_n
            el = time.time() - t_train
            log(f"step {step+1:5d}/{args.steps}  loss {avg:.3f}  lr {lr:.2e}  {el:.0f}s  "
                f"{(step+1)*BATCH*SEQ_LEN/max(el, 1e-9)/1e3:.0f}K tok/s")
            log_rows.append((step + 1, avg))
            acc.zero_()
            acc_n = 0
    train_secs = time.time() - t_train

    model.eval()
    val_gen = torch.Generator().manual_seed(SEED + 1)
    val_dev = val_ids.to(device)
    with torch.no_grad():
        val_loss = sum(float(loss_of(batch(val_dev, val_gen)).item()) for _ in range(10)) / 10
    log(f"validation loss {val_loss:.3f} (perplexity {math.exp(val_loss):.1f}); "
        f"training took {train_secs:.0f}s")

    # ---- save (bfloat16 safetensors)
    model = model.to("cpu").to(torch.bfloat16)
    for stale in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"):
        p = os.path.join(out_dir, stale)
        if os.path.exists(p):
            os.remove(p)
    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    except TypeError:
        model.save_pretrained(out_dir)
    del model
    st_path = os.path.join(out_dir, "model.safetensors")
    if not os.path.isfile(st_path):
        raise RuntimeError("model.safetensors was not written")
    st_size = os.path.getsize(st_path)
    from safetensors import safe_open
    with safe_open(st_path, framework="pt") as f:
        keys = sorted(f.keys())
        dtypes = sorted({str(f.get_tensor(k).dtype) for k in keys})
    if st_size >= 8 * 1024 * 1024:
        raise RuntimeError(f"model.safetensors is {st_size} bytes, over 8 MB")
    gen_cfg = {"bos_token_id": eot_id, "eos_token_id": [eot_id, ime_id], "pad_token_id": eot_id,
               "transformers_version": transformers.__version__}
    with open(os.path.join(out_dir, "generation_config.json"), "w", encoding="utf-8") as f:
        json.dump(gen_cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "config.json"), encoding="utf-8") as f:
        saved_cfg = json.load(f)
    theta, rtype = effective_rope_theta(saved_cfg)
    if theta is None or abs(float(theta) - ROPE_THETA) > 1e-6 or rtype != "default":
        raise RuntimeError(f"saved config has rope theta={theta} type={rtype}")
    log(f"saved {st_path}: {st_size/1e6:.2f} MB, {len(keys)} tensors, dtypes {dtypes}, "
        f"lm_head.weight in file: {'lm_head.weight' in keys}")

    # ---- samples from the saved files (bf16 weights upcast to float32)
    model = load_model(out_dir, device, torch.float32)
    stop = (eot_id, ime_id)
    samples = []
    for prompt in ["The", "Return a new", "import os\n"]:
        ids = tok.encode(prompt, add_special_tokens=False).ids
        out = generate(model, ids, 48, device, stop)
        samples.append((prompt, tok.decode(out, skip_special_tokens=False)))
    chat_msgs = [{"role": "user", "content": "What does os.path.join do?"}]
    rendered = render_chat(chat_msgs)
    try:
        hf_tok = transformers.AutoTokenizer.from_pretrained(out_dir)
        hf_rendered = hf_tok.apply_chat_template(chat_msgs, tokenize=False, add_generation_prompt=True)
        if hf_rendered != rendered:
            log(f"warning: chat_template renders {hf_rendered!r}, expected {rendered!r}")
    except Exception as e:  # noqa: BLE001
        log(f"note: AutoTokenizer/apply_chat_template check skipped ({type(e).__name__}: {e})")
    out = generate(model, tok.encode(rendered, add_special_tokens=False).ids, 64, device, stop)
    samples.append((rendered, tok.decode(out, skip_special_tokens=False)))
    sgen = torch.Generator().manual_seed(SEED)
    out = generate(model, tok.encode("The", add_special_tokens=False).ids, 48, device, stop,
                   temperature=0.8, gen=sgen)
    samples.append(("The  [sampled, temperature 0.8, seed 0]", tok.decode(out, skip_special_tokens=False)))

    # ---- model card
    loss_table = "\n".join(f"| {s} | {l:.3f} |" for s, l in log_rows)
    sample_md = "\n\n".join(f"Prompt `{p!r}` → `{c!r}`" for p, c in samples)
    card = f"""---
tags: [demo, tiny, llama, fastgen]
---

# {MODEL_NAME}

**A demo model, not a useful one.** FastGen embeds it as its default model so that the server can
start and produce text without downloading anything. It produces vaguely English,
Python-documentation-flavoured text; it knows nothing, follows no instructions, and must not be
used for real work.

Made by `models/make_demo_model.py` in the FastGen repository:

    PYTHONUNBUFFERED=1 python3 models/make_demo_model.py {args.out_dir} --steps {args.steps}

## Architecture

LlamaForCausalLM: hidden 192, 4 layers, 6 attention heads (head_dim 32), 2 KV heads (GQA),
intermediate 512 (SiLU-gated MLP), RMSNorm eps {RMS_EPS}, RoPE theta {ROPE_THETA:g} (no scaling),
max_position_embeddings {MAX_POS} (trained on {SEQ_LEN}-token windows only),
tie_word_embeddings true (no lm_head.weight in the file), vocab {VOCAB_SIZE},
{n_params/1e6:.2f}M parameters, stored as bfloat16 in model.safetensors ({st_size/1e6:.2f} MB).

## Tokenizer

Byte-level BPE (Llama-3 style split regex + ByteLevel), {VOCAB_SIZE} tokens trained on the same
corpus; specials `{EOT}` = {eot_id} (end of text / document separator / eos), `{IM_START}` = {ims_id},
`{IM_END}` = {ime_id}. No BOS is added (add_bos_token false). tokenizer_config.json has a ChatML
chat_template; generation_config.json stops on `{EOT}` and `{IM_END}`.

## Training data

Text from the Python {platform.python_version()} standard library found at `{cinfo['stdlib']}` on the
machine that ran the script (Python Software Foundation License): {cinfo['docstrings']} distinct
docstrings of modules, classes and functions read with `ast` from {cinfo['files']} source files
(tests, idlelib, lib2to3, encodings and a few others excluded), {cinfo['topics']} pydoc help topics,
the Zen of Python, and {cinfo['chat_pairs']} ChatML pairs "What does <name> do?" → the first
paragraph of that name's docstring. {cinfo['chars']/1e6:.1f}M characters (sha256
{cinfo['sha256'][:16]}...), {train_ids.numel()/1e6:.2f}M training tokens, 1% of documents held out.

## Training

{args.steps} steps of AdamW (betas 0.9/0.95, weight decay {WEIGHT_DECAY}, peak lr {LR:g}, {WARMUP}
warm-up steps, cosine to {MIN_LR_FRAC:g}× peak, grad clip {GRAD_CLIP:g}), batch {BATCH} × {SEQ_LEN}
tokens, {'bf16 autocast on ' + device if use_amp else 'float32 on ' + device}, seed {SEED},
random windows in a fixed seeded order; {train_secs:.0f} s. Final held-out loss {val_loss:.3f}
(perplexity {math.exp(val_loss):.1f}). torch {torch.__version__}, transformers {transformers.__version__}.

| step | mean training loss over the last 100 steps |
| --- | --- |
{loss_table}

## Samples (greedy unless marked; from the saved bfloat16 weights, computed in float32)

{sample_md}
"""
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)

    log("")
    log("samples:")
    for p, c in samples:
        log(f"  {p!r} -> {c!r}")
    log("")
    log(f"done in {time.time()-t_start:.0f}s: {out_dir} ({', '.join(sorted(os.listdir(out_dir)))}); "
        f"final val loss {val_loss:.3f}, model.safetensors {st_size/1e6:.2f} MB")


if __name__ == "__main__":
    main()
