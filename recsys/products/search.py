"""Text search over the catalog: a BM25 baseline and a contrastively trained query tower, compared at build time.

Each product is described by words built from its features: the ``category_code`` tokens (with a few common
synonyms, e.g. smartphone -> phone), its brand, its name when the store has one (a UCI Description such as
"WHITE HANGING HEART T-LIGHT HOLDER"), and price words from its price band within its category
(budget -> cheap/budget/affordable, premium -> premium/expensive/luxury). Both methods read those words:

- **bm25**: Okapi BM25 over the words (a sparse item x word matrix; a query sums its words' columns);
- **tower**: a query tower (mean of word embeddings -> MLP -> unit vector) trained with in-batch negatives
  (sampled softmax, accidental hits with the same description masked) against the item representation: the
  two-tower model's item embeddings when the model stage exists, else an item text tower trained jointly.

Both add a small popularity prior so that equally matching products rank best sellers first. The build scores
both on held-out text variants of sampled products (hit rate@10 of the product itself, MRR, and the share of
the top 10 in the product's category) and keeps the better one as the default.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.artifacts import Progress, no_progress
from recsys.ranking import top_positions

log = logging.getLogger(__name__)

PRICE_WORDS = {"budget": ["cheap", "budget", "affordable", "inexpensive", "low", "price"],
               "mid-range": ["mid", "range", "midrange", "standard"],
               "premium": ["premium", "expensive", "luxury", "high", "end", "top"]}
SYNONYMS = {"smartphone": ["phone", "mobile", "cellphone"], "notebook": ["laptop"], "headphone": ["earphone",
            "headset", "earbud"], "tv": ["television"], "clock": ["watch", "smartwatch"], "refrigerator": ["fridge"],
            "washer": ["washing", "machine"], "vacuum": ["cleaner", "hoover"], "shoe": ["sneaker"],
            "keds": ["sneaker"], "acoustic": ["speaker"], "videoregister": ["dashcam", "dvr"], "tablet": ["ipad"],
            "desktop": ["pc", "computer"], "cartrige": ["cartridge", "ink"], "kettle": ["teapot"]}
STOPWORDS = {"and", "for", "the", "a", "an", "with", "of", "in", "unknown", "brand", "category", "id"}
METHODS = ("bm25", "tower")
K1, B = 1.2, 0.75
POP_PRIOR = 0.02
MAX_QUERY_WORDS = 12
_TOKEN = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A tiny plural stemmer (headphones -> headphone), applied to products and queries alike."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words, stemmed, stop words dropped."""
    return [stem(w) for w in _TOKEN.findall(str(text).lower()) if w not in STOPWORDS]


def product_fields(cards: pd.DataFrame) -> list[dict[str, list[str]]]:
    """Per product: its category words, synonyms, brand words, name words and price words (all stemmed)."""
    out = []
    names = cards["name"] if "name" in cards else [""] * len(cards)
    for code, brand, name, band in zip(cards["category_code"], cards["brand"], names, cards["price_band"]):
        cat = [] if code == "unknown_category" else tokenize(str(code).replace(".", " ").replace("_", " "))
        syn = [stem(s) for w in cat for s in SYNONYMS.get(w, [])]
        br = [] if brand == "unknown_brand" else tokenize(str(brand).replace("_", " "))
        out.append({"category": cat, "synonyms": syn, "brand": br,
                    "name": tokenize(name) if isinstance(name, str) else [],
                    "price": [stem(w) for w in PRICE_WORDS.get(band, [])]})
    return out


def full_text(fields: dict[str, list[str]]) -> list[str]:
    """Every word describing a product (the BM25 document)."""
    return fields["category"] + fields["synonyms"] + fields["brand"] + fields.get("name", []) + fields["price"]


def text_variant(fields: dict[str, list[str]], rng: np.random.Generator) -> list[str]:
    """A query a shopper might type for this product: some category words, maybe a few words of its name, maybe
    the brand, maybe a price word."""
    words: list[str] = []
    cat, name = fields["category"], fields.get("name", [])
    if cat:
        leaf = cat[-1:] if rng.random() < 0.5 else cat[rng.integers(0, len(cat)):]
        syn = [s for s in fields["synonyms"]]
        words += [syn[rng.integers(0, len(syn))]] if syn and rng.random() < 0.3 else leaf
    if name and (not cat or rng.random() < 0.5):  # no rng draw without a name: REES46 variants stay as they were
        k = int(rng.integers(1, min(3, len(name)) + 1))
        words += [name[i] for i in np.sort(rng.choice(len(name), size=k, replace=False))]
    if fields["brand"] and (rng.random() < 0.7 or not words):
        words += fields["brand"]
    if fields["price"] and (rng.random() < 0.35 or not words):
        words.append(fields["price"][rng.integers(0, min(3, len(fields["price"])))])
    rng.shuffle(words)
    return words


@dataclass
class Vocabulary:
    """Word -> column index, with a trigram-based correction of unknown (misspelt) words."""
    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}
        self.grams = [_trigrams(w) for w in self.words]
        self.by_gram: dict[str, list[int]] = {}
        for i, g in enumerate(self.grams):
            for x in g:
                self.by_gram.setdefault(x, []).append(i)

    def ids(self, tokens: list[str]) -> list[int]:
        """Column ids of the tokens; an unknown token maps to its closest known word (trigram Jaccard >= 0.4)."""
        out = []
        for t in tokens:
            i = self.index.get(t)
            if i is None:
                i = self.closest(t)
            if i is not None:
                out.append(i)
        return out

    def closest(self, token: str) -> int | None:
        """The known word sharing the most trigrams with ``token`` (Jaccard >= 0.4), via a trigram index."""
        g = _trigrams(token)
        shared: dict[int, int] = {}
        for x in g:
            for i in self.by_gram.get(x, ()):
                shared[i] = shared.get(i, 0) + 1
        best, score = None, 0.4
        for i, n in sorted(shared.items()):
            s = n / (len(g) + len(self.grams[i]) - n)
            if s > score:
                best, score = i, s
        return best


def _trigrams(word: str) -> set[str]:
    w = f"#{word}#"
    return {w[i:i + 3] for i in range(len(w) - 2)}


def bm25_matrix(docs: list[list[int]], n_words: int) -> sp.csc_matrix:
    """Items x words BM25 weights (a query's scores are the sum of its words' columns)."""
    rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    cols = np.fromiter((w for d in docs for w in d), dtype=np.int64, count=len(rows))
    tf = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(docs), n_words))
    tf.sum_duplicates()
    dl = np.asarray(tf.sum(axis=1)).ravel()
    df = np.asarray((tf > 0).sum(axis=0)).ravel()
    idf = np.log1p((len(docs) - df + 0.5) / (df + 0.5)).astype(np.float32)
    tf = tf.tocoo()
    norm = K1 * (1 - B + B * dl[tf.row] / max(dl.mean(), 1e-9))
    w = idf[tf.col] * tf.data * (K1 + 1) / (tf.data + norm)
    return sp.csc_matrix((w.astype(np.float32), (tf.row, tf.col)), shape=tf.shape)


def popularity_prior(cards: pd.DataFrame) -> np.ndarray:
    """A [0, POP_PRIOR] bonus from weighted interactions: breaks ties between equally matching products."""
    pop = np.log1p(cards["views"].to_numpy(float) + 3 * cards["carts"].to_numpy(float)
                   + 5 * cards["purchases"].to_numpy(float))
    return (POP_PRIOR * pop / max(pop.max(), 1e-9)).astype(np.float32)


@dataclass(frozen=True)
class TowerConfig:
    """The query tower's shape and training knobs (stored with its weights)."""
    n_words: int
    dim: int = 64
    out_dim: int = 64
    temperature: float = 0.07
    steps: int = 600
    batch: int = 256
    lr: float = 0.01
    variants: int = 8
    item_text_tower: bool = True   # False: match frozen item embeddings (the two-tower's)


def train_query_tower(docs: list[list[int]], variants: list[list[list[int]]], cfg: TowerConfig,
                      item_embeddings: np.ndarray | None, seed: int,
                      progress: Progress = no_progress) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Train with in-batch negatives; returns (query tower weights as numpy, item vectors (I, d))."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only spin (and the machine is shared)
    try:
        return _train(docs, variants, cfg, item_embeddings, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _train(docs: list[list[int]], variants: list[list[list[int]]], cfg: TowerConfig,
           item_embeddings: np.ndarray | None, seed: int, progress: Progress) -> tuple[dict, np.ndarray]:
    import torch
    from torch import nn
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sig = np.unique([" ".join(map(str, sorted(d))) for d in docs], return_inverse=True)[1]

    def bag(lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lens = [max(len(x), 1) for x in lists]
        flat = [w for x in lists for w in (x or [cfg.n_words])]  # empty text -> the padding word
        return torch.tensor(flat), torch.tensor(np.concatenate([[0], np.cumsum(lens)[:-1]]))

    q_emb = nn.EmbeddingBag(cfg.n_words + 1, cfg.dim, mode="mean")
    q_mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.ReLU(), nn.Linear(cfg.dim, cfg.out_dim))
    params = list(q_emb.parameters()) + list(q_mlp.parameters())
    if item_embeddings is None:
        i_emb = nn.EmbeddingBag(cfg.n_words + 1, cfg.out_dim, mode="mean")
        params += list(i_emb.parameters())
        doc_bag = bag(docs)
    else:
        target = torch.nn.functional.normalize(torch.tensor(item_embeddings, dtype=torch.float32), dim=1)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    n = len(docs)
    for step in range(cfg.steps):
        idx = rng.choice(n, size=min(cfg.batch, n), replace=False)
        qs = [variants[i][rng.integers(0, len(variants[i]))] for i in idx]
        q = nn.functional.normalize(q_mlp(q_emb(*bag(qs))), dim=1)                      # (B, d)
        if item_embeddings is None:
            it = nn.functional.normalize(i_emb(*bag([docs[i] for i in idx])), dim=1)   # (B, d)
        else:
            it = target[torch.tensor(idx)]
        logits = q @ it.T / cfg.temperature                                             # (B, B)
        same = torch.tensor(sig[idx][:, None] == sig[idx][None, :]) & ~torch.eye(len(idx), dtype=torch.bool)
        logits = logits.masked_fill(same, -1e9)  # products with the same description are not negatives
        loss = nn.functional.cross_entropy(logits, torch.arange(len(idx)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            progress(step / cfg.steps, f"query tower step {step}/{cfg.steps} loss {loss.item():.3f}")
    with torch.no_grad():
        if item_embeddings is None:
            items = nn.functional.normalize(i_emb(*doc_bag), dim=1).numpy()
        else:
            items = target.numpy()
    weights = {"emb": q_emb.weight.detach().numpy(), "w1": q_mlp[0].weight.detach().numpy(),
               "b1": q_mlp[0].bias.detach().numpy(), "w2": q_mlp[2].weight.detach().numpy(),
               "b2": q_mlp[2].bias.detach().numpy()}
    return weights, items.astype(np.float32)


def encode_query(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """The query tower in numpy: mean word embedding -> MLP -> unit vector (d,)."""
    h = weights["emb"][ids].mean(axis=0)
    h = np.maximum(weights["w1"] @ h + weights["b1"], 0.0)
    v = weights["w2"] @ h + weights["b2"]
    return (v / max(float(np.linalg.norm(v)), 1e-9)).astype(np.float32)


class SearchIndex:
    """Loaded search artifacts: ``search(query, k)`` -> item row positions and scores, best first."""

    def __init__(self, vocab: Vocabulary, bm25: sp.csc_matrix, tower: dict[str, np.ndarray] | None,
                 items: np.ndarray | None, prior: np.ndarray, default: str, report: dict | None = None):
        self.vocab, self.bm25, self.tower, self.items, self.prior = vocab, bm25, tower, items, prior
        self.default, self.report = default, report or {}

    @classmethod
    def load(cls, directory: Path, cards: pd.DataFrame) -> "SearchIndex":
        """Read the search directory written by :func:`build_search`."""
        report = json.loads((directory / "report.json").read_text())
        vocab = Vocabulary(json.loads((directory / "vocab.json").read_text()))
        bm25 = sp.load_npz(directory / "bm25.npz").tocsc()
        tower = dict(np.load(directory / "query_tower.npz")) if (directory / "query_tower.npz").exists() else None
        items = np.load(directory / "item_vectors.npy") if (directory / "item_vectors.npy").exists() else None
        return cls(vocab, bm25, tower, items, popularity_prior(cards), report["default"], report)

    def scores(self, query: str, method: str | None = None) -> np.ndarray | None:
        """Scores of every item for the query; None when no query word is known to the catalog."""
        ids = self.vocab.ids(tokenize(query)[:MAX_QUERY_WORDS])
        if not ids:
            return None
        method = method or self.default
        if method == "tower" and self.tower is not None:
            s = np.einsum("ij,j->i", self.items, encode_query(self.tower, ids))  # no BLAS threads for one query
        elif method in METHODS:
            s = np.asarray(self.bm25[:, ids].sum(axis=1)).ravel()
            s = s / max(float(s.max()), 1e-9)
        else:
            raise ValueError(f"unknown search method '{method}' (use one of {', '.join(METHODS)})")
        return s + self.prior

    def search(self, query: str, k: int = 10, method: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item positions and scores (empty when the query matches nothing)."""
        s = self.scores(query, method)
        if s is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if (method or self.default) == "bm25":
            s = np.where(s > self.prior, s, -np.inf)  # BM25: only products matching at least one word
        top = top_positions(s, k)
        return top, s[top].astype(np.float32)



def evaluate_search(index: SearchIndex, queries: list[list[str]], targets: np.ndarray, groups: np.ndarray,
                    method: str, k: int = 10) -> dict[str, float]:
    """Hit rate@k and MRR of each target for its held-out query, plus the share of the top k in its category."""
    hits, rr, prec, times = [], [], [], []
    for words, t in zip(queries, targets):
        t0 = time.perf_counter()
        s = index.scores(" ".join(words), method)
        times.append(time.perf_counter() - t0)
        if s is None:
            hits.append(0.0), rr.append(0.0), prec.append(0.0)
            continue
        rank = int((s > s[t]).sum()) + 1
        hits.append(float(rank <= k))
        rr.append(1.0 / rank)
        top = top_positions(s, k)
        prec.append(float((groups[top] == groups[t]).mean()))
    return {f"hit_rate@{k}": float(np.mean(hits)), "mrr": float(np.mean(rr)),
            f"category_precision@{k}": float(np.mean(prec)), "queries": len(targets),
            "p50_ms": float(np.median(times) * 1000)}


def build_search(cards: pd.DataFrame, out: Path, *, item_embeddings: np.ndarray | None = None, seed: int = 7,
                 eval_items: int = 2000, progress: Progress = no_progress) -> dict:
    """Write the vocabulary, BM25 matrix and query tower for ``cards`` into ``out``; return the comparison."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fields = product_fields(cards)
    words = sorted({w for f in fields for w in full_text(f)} | {stem(w) for ws in PRICE_WORDS.values() for w in ws})
    vocab = Vocabulary(words)
    docs = [vocab.ids(full_text(f)) for f in fields]
    bm25 = bm25_matrix(docs, len(words))
    variants = [[vocab.ids(text_variant(f, rng)) for _ in range(TowerConfig.variants)] for f in fields]
    held_out = [vocab.ids(text_variant(f, np.random.default_rng([seed, 1, i]))) for i, f in enumerate(fields)]
    use_emb = item_embeddings is not None and np.abs(item_embeddings).sum() > 0
    cfg = TowerConfig(n_words=len(words), out_dim=item_embeddings.shape[1] if use_emb else 64,
                      item_text_tower=not use_emb, steps=min(1500, max(300, 3 * len(cards) // 256)))
    progress(0.05, "training the query tower")
    weights, items = train_query_tower(docs, variants, cfg, item_embeddings if use_emb else None, seed,
                                       progress=lambda f, m: progress(0.05 + 0.8 * f, m))
    index = SearchIndex(vocab, bm25, weights, items, popularity_prior(cards), "bm25")
    progress(0.9, "comparing search methods")
    sample = np.sort(rng.choice(len(cards), size=min(eval_items, len(cards)), replace=False))
    sample = sample[[bool(held_out[i]) for i in sample]]
    queries = [[vocab.words[w] for w in held_out[i]] for i in sample]
    groups = pd.factorize(cards["category_key"])[0]
    metrics = {m: evaluate_search(index, queries, sample, groups, m) for m in METHODS}
    default = max(METHODS, key=lambda m: (metrics[m]["hit_rate@10"], metrics[m]["mrr"]))
    report = {"default": default, "metrics": metrics, "tower": {**asdict(cfg), "seed": seed,
              "item_side": "two-tower item embeddings" if use_emb else "item text tower"}}
    (out / "vocab.json").write_text(json.dumps(words))
    sp.save_npz(out / "bm25.npz", bm25.tocsc())
    np.savez(out / "query_tower.npz", **weights)
    np.save(out / "item_vectors.npy", items)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    progress(1.0, f"search: default {default}")
    return report
