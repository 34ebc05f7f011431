"""Architecture name → module class; adding an architecture means adding one line here."""

from __future__ import annotations

from vislens.sae.base import BaseSAE
from vislens.sae.gated_sae import GatedSAE
from vislens.sae.jumprelu_sae import JumpReLUSAE
from vislens.sae.spec import SAESpec
from vislens.sae.standard_sae import StandardSAE
from vislens.sae.topk_sae import TopKSAE

SAE_CLASSES: dict[str, type[BaseSAE]] = {
    "standard": StandardSAE,
    "topk": TopKSAE,
    "jumprelu": JumpReLUSAE,
    "gated": GatedSAE,
}


def build_sae(spec: SAESpec) -> BaseSAE:
    """A freshly initialised SAE module for ``spec``."""
    return SAE_CLASSES[spec.architecture](spec)
