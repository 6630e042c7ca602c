"""Postings: 季公示 and 年总结 — documents, artefacts, objections."""
