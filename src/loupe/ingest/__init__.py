"""Ingestion: declared sources → ``raw_<table>``, with quarantine and reconciliation."""

from loupe.ingest.load import IngestReport, SourceReport, ingest

__all__ = ["IngestReport", "SourceReport", "ingest"]
