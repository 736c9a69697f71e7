"""Synthetic company generator with ground truth.

A China-based bilingual omni-channel retailer: loyalty CRM, e-shop, POS (GBK files), Segment
web/app events, products, marketing spend, consents and reviews, with realistic dirt and the
truth in ``OUT/truth/`` (see ``docs/synthetic-company.md``).
"""

from loupe.synth.generate import GenerateReport, generate_company

__all__ = ["GenerateReport", "generate_company"]
