"""LatentLens: contextual text bank, nearest-neighbour search, embedding/logit-lens baselines.

One call on a study (the toy with its world's captions as corpus)::

    from vislens.lens import run_lens
    out = run_lens(Study.open("my-study"))   # bank, neighbours, sample, ground-truth rates
"""

from vislens.lens.alignment import layer_alignment
from vislens.lens.bank import Bank, BankResult, build_bank
from vislens.lens.corpus import read_corpus
from vislens.lens.encode import encode_captions
from vislens.lens.exports import read_export, write_exports
from vislens.lens.neighbors import METHODS, NEIGHBOR_COLUMNS, LensRunner, SearchSettings
from vislens.lens.rates import ground_truth_rates, interpretability_rates
from vislens.lens.run import (
    build_study_bank,
    load_study_vlm,
    rates_study,
    read_neighbors,
    run_lens,
    run_neighbors,
    sample_study,
)
from vislens.lens.sample import read_human_study, sample_instances
from vislens.lens.sampling import SamplingRules, plan_bank
from vislens.lens.search import merge_layers, topk_cosine
from vislens.lens.textmodel import BankModel, load_bank_model
from vislens.lens.visual import visual_tokens

__all__ = [
    "METHODS",
    "NEIGHBOR_COLUMNS",
    "Bank",
    "BankModel",
    "BankResult",
    "LensRunner",
    "SamplingRules",
    "SearchSettings",
    "build_bank",
    "build_study_bank",
    "encode_captions",
    "ground_truth_rates",
    "interpretability_rates",
    "layer_alignment",
    "load_bank_model",
    "load_study_vlm",
    "merge_layers",
    "plan_bank",
    "rates_study",
    "read_corpus",
    "read_export",
    "read_human_study",
    "read_neighbors",
    "run_lens",
    "run_neighbors",
    "sample_instances",
    "sample_study",
    "topk_cosine",
    "visual_tokens",
    "write_exports",
]
