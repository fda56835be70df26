"""Data sets: where they live, and verified downloads (the dataset catalogue arrives with issue #5)."""

from metaenvs.data.download import data_dir, download, ensure_file, sha256_matches

__all__ = ["data_dir", "download", "ensure_file", "sha256_matches"]
