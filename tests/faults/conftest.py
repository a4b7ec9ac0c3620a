"""The fault tests' runs: one per seed, from `--fault-seed`, `--runs` of them (options of tests/conftest.py)."""

from __future__ import annotations

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        first, runs = metafunc.config.getoption("--fault-seed"), metafunc.config.getoption("--runs")
        metafunc.parametrize("seed", [first + n for n in range(runs)])
