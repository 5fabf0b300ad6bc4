"""Contract tests every importer backend must pass, as a pytest mix-in.

Subclass :class:`ImporterContract` in a test module (name starting with ``Test``), name
the backend and write a tiny file of its format::

    from pdesurrogates.testing import ImporterContract

    class TestMyFormatContract(ImporterContract):
        backend_name = "my-format"

        def write_fixture(self, directory):
            path = directory / "tiny.myf"
            a = np.arange(24.0).reshape(2, 3, 4)
            ...  # write ``a`` in the format
            return path, {"a": (("sample", "x", "y"), a)}

``write_fixture`` returns the file and, for each field the import must produce, its
dims in our file and its values (sample axis first). The checks: ``guess_can_open``
accepts the fixture and rejects the fixtures of every other contract class in the test
session, a text file, one of our own files and a missing path; the registry picks this
backend for the fixture; the import validates, with the fixture's values (within the
float32 of our schema) on the named dims; reading the fixture in place with
:func:`~pdesurrogates.datasets.open_dataset` gives the same values; and a truncated or
garbage file raises :class:`~pdesurrogates.errors.DatasetError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["ImporterContract"]

Expected = dict[str, tuple[tuple[str, ...], np.ndarray]]


def _own_file(directory: Path) -> Path:
    from pdesurrogates.datasets import DatasetWriter, FieldSpec

    path = directory / "ours.h5"
    with DatasetWriter(
        path, n_samples=2, coords={"x": [0.0, 1.0]}, fields={"u": FieldSpec(("sample", "x"))}
    ) as w:
        w.write_batch(0, {"u": np.ones((2, 2))})
        w.finalize()
    return path


class ImporterContract:
    """pytest mix-in: the behaviour every importer backend guarantees.

    Notes
    -----
    Hooks to override:

    - ``backend_name``: the registered backend's name (or override ``make_backend()``).
    - ``write_fixture(directory) -> (path, expected)``: write a tiny file (or folder) of
      the format inside ``directory``; ``expected`` maps each field name of the imported
      file to ``(dims, values)``.

    Optional attribute: ``rtol`` for the value comparison (default: float32 rounding).
    """

    backend_name: ClassVar[str] = ""
    rtol: ClassVar[float] = 1e-6
    _writers: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.backend_name:  # every contract class knows the others' fixtures
            ImporterContract._writers[cls.backend_name] = cls

    # hooks ---------------------------------------------------------------------------
    def make_backend(self):
        from pdesurrogates.datasets.backends import get_backend

        return get_backend(self.backend_name)

    def write_fixture(self, directory: Path) -> tuple[Path, Expected]:  # pragma: no cover
        raise NotImplementedError("define write_fixture() in the test class")

    # helpers -------------------------------------------------------------------------
    def _fixture(self, tmp_path: Path) -> tuple[Path, Expected]:
        directory = tmp_path / "fixture"
        directory.mkdir()
        return self.write_fixture(directory)

    def _check_values(self, name: str, got: np.ndarray, want: np.ndarray) -> None:
        want32 = np.asarray(want).astype(np.float32)
        assert got.shape == want32.shape, f"{name}: shape {got.shape}, expected {want32.shape}"
        np.testing.assert_allclose(got, want32, rtol=self.rtol, atol=0, err_msg=name)

    # the contract --------------------------------------------------------------------
    def test_guess_can_open_accepts_its_fixture(self, tmp_path):
        from pdesurrogates.datasets import guess_backend

        backend = self.make_backend()
        path, _ = self._fixture(tmp_path)
        assert backend.guess_can_open(path) is True
        found = guess_backend(path)
        assert found is not None and found.name == backend.name, found

    def test_guess_can_open_rejects_other_files(self, tmp_path):
        backend = self.make_backend()
        others = []
        for name, cls in sorted(ImporterContract._writers.items()):
            if name != backend.name:
                directory = tmp_path / name
                directory.mkdir()
                others.append(cls().write_fixture(directory)[0])
        text = tmp_path / "notes.txt"
        text.write_text("not a dataset\n")
        others += [text, _own_file(tmp_path), tmp_path / "missing.h5"]
        accepted = [str(p) for p in others if backend.guess_can_open(p)]
        assert not accepted, f"{backend.name} claims {accepted}"

    def test_import_validates_with_the_source_values(self, tmp_path):
        from pdesurrogates.datasets import open_xarray, validate

        backend = self.make_backend()
        path, expected = self._fixture(tmp_path)
        out = backend.import_file(path, tmp_path / "out.h5", progress=False)
        report = validate(out)
        assert set(expected) <= set(report.fields), (sorted(expected), sorted(report.fields))
        with open_xarray(out, load=True) as ds:
            for name, (dims, values) in expected.items():
                assert ds[name].dims == tuple(dims), f"{name}: dims {ds[name].dims}"
                assert ds[name].dtype == np.float32
                self._check_values(name, ds[name].values, values)

    def test_read_in_place_equals_import(self, tmp_path):
        from pdesurrogates.datasets import from_channel_first, open_dataset

        path, expected = self._fixture(tmp_path)
        ds = open_dataset(path)
        for name, (dims, values) in expected.items():
            if dims[0] != "sample":
                continue
            got = np.stack([ds[i][name].numpy() for i in range(len(ds))])  # channel-first
            self._check_values(name, from_channel_first(got, dims), values)
        ds.close()

    def test_truncated_file_is_a_clear_error(self, tmp_path):
        from pdesurrogates.errors import DatasetError

        backend = self.make_backend()
        path, _ = self._fixture(tmp_path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        victim = files[0]
        data = victim.read_bytes()
        victim.write_bytes(data[: max(1, len(data) // 2)])
        try:
            backend.import_file(path, tmp_path / "out.h5", progress=False)
        except DatasetError as exc:
            assert str(victim) in str(exc) or str(path) in str(exc), str(exc)
        else:  # pragma: no cover - the assertion message is the report
            raise AssertionError(f"importing truncated {victim} did not raise DatasetError")
        assert not (tmp_path / "out.h5").exists()

    def test_garbage_file_is_a_clear_error(self, tmp_path):
        from pdesurrogates.errors import DatasetError

        backend = self.make_backend()
        path, _ = self._fixture(tmp_path)
        garbage = tmp_path / ("garbage" + (path.suffix or ".bin"))
        garbage.write_bytes(np.random.default_rng(0).bytes(4096))
        try:
            backend.import_file(garbage, tmp_path / "out.h5", progress=False)
        except DatasetError as exc:
            assert str(garbage) in str(exc), str(exc)
        else:  # pragma: no cover
            raise AssertionError(f"importing garbage {garbage} did not raise DatasetError")
        assert not (tmp_path / "out.h5").exists()
