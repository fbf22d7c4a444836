"""The reference vectors travel with the repository (tests/reference) so CI always runs the
reference tests; where ../shared/reference sits beside the checkout, the copy must equal it."""

import hashlib
from pathlib import Path

import pytest

SHARED_REFERENCE_DIR = Path(__file__).resolve().parents[4] / "shared" / "reference"


def digests(folder):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()}


def test_copy_has_the_vectors_the_tests_read(reference_dir):
    names = set(digests(reference_dir))
    assert {"fmnist01_1000_pixels.npy", "fmnist01_1000_gamma0.8.npz", "README.md"} <= names


def test_copy_equals_shared_reference(reference_dir):
    if not SHARED_REFERENCE_DIR.exists():
        pytest.skip("../shared/reference is not beside this checkout")
    assert digests(reference_dir) == digests(SHARED_REFERENCE_DIR)
