"""A distilled judge's artifact: one file holding the model and what it was trained on, never pickled.

The file is a zip of two members: ``meta.json`` (the judge's name, its teacher
and the teacher's version, labels and the score of each, the fields read, the
holdout metrics, the proposed threshold) and ``model.skops`` (the fitted
scikit-learn pipeline in skops' format: a JSON schema and ``.npy`` arrays,
read with ``allow_pickle=False``). Its name is ``NAME-<16 hex>.distilled``, the
hex being the start of the SHA-256 of the whole file, so metrics and metadata
are covered by the hash too, and the judge version derives from it
(:mod:`judges.version`).

Why skops and not ONNX: skops loads the very scikit-learn objects that were
trained (no converter whose output can differ from the model, no second
runtime to install in every worker), and sparse hashed features stay sparse;
the distilled benchmark measures it above the targets (>= 2,000 items/s per
core, load well under 1 s).

Loading refuses, with an :class:`~judges.errors.ArtifactError` and before any
object is built: a file whose content hash does not match its name (or the hash
the judge was resolved with), a zip that is not an artifact, a format it does
not know, and a model holding any type outside :data:`TRUSTED_TYPES`. The check
walks every node of the skops schema (module, class and skops loader), then
skops is given exactly the allowed types it would not trust by itself.

Allowed types can still be given settings that cost without bound: a
vectorizer's ``token_pattern`` is a regular expression run on every record (a
catastrophic one took 16 s on a 37-character record), ``ngram_range`` and
``analyzer`` multiply the features, ``input = "filename"`` reads each record as a
path. So every vectorizer of a loaded model (fitted copies included) must read
text exactly as ``judgeq distill`` builds it (:data:`TEXT_READING`), checked
after skops builds the objects and before any text reaches them (building one
runs nothing: the pattern is compiled and run only on ``transform``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import ArtifactError

FORMAT: Final = "judgeq-distilled/1"
SUFFIX: Final = ".distilled"
#: Hex digits of the SHA-256 in the file name.
NAME_HASH_HEX: Final = 16
#: The largest artifact read (a hashed linear model is a few MB per 2**18 features and class).
MAX_ARTIFACT_BYTES: Final = 512 * 1024 * 1024
_NAMED = re.compile(r"^(?P<name>.+)-(?P<hash>[0-9a-f]{16})\.distilled$")
#: Zip entries get a fixed time, so the same model and metadata give the same bytes and hash.
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)

#: Every type a distilled model may hold ("module.Class"); anything else is refused unloaded.
TRUSTED_TYPES: Final = frozenset({
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.slice", "builtins.str", "builtins.int",
    "builtins.float", "builtins.bool", "builtins.NoneType",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32",
    "numpy.bool_", "numpy.str_",
    "sklearn.pipeline.Pipeline",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
})
#: How every vectorizer of a distilled model reads text: what ``judgeq distill`` builds (scheduler/distill.py
#: passes these), the only settings a loaded artifact may hold. The pattern is scikit-learn's default (words
#: of two or more word characters), which matches in linear time.
TEXT_READING: Final[dict[str, Any]] = {
    "input": "content", "encoding": "utf-8", "decode_error": "strict", "strip_accents": None, "lowercase": True,
    "preprocessor": None, "tokenizer": None, "stop_words": None, "token_pattern": r"(?u)\b\w\w+\b",
    "analyzer": "word", "ngram_range": (1, 2),
}
#: The skops node loaders a distilled model may use (no ``ReduceNode`` or method and function references).
TRUSTED_LOADERS: Final = frozenset({
    "DictNode", "ListNode", "TupleNode", "SliceNode", "JsonNode", "TypeNode", "NdArrayNode", "ObjectNode",
    "SparseMatrixNode",
})


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact: the fitted pipeline, its metadata and the file's SHA-256."""

    path: Path
    sha256: str
    meta: dict[str, Any]
    model: Any

    @property
    def name(self) -> str:
        return str(self.meta["name"])


def write_artifact(folder: Path, name: str, model: Any, meta: dict[str, Any]) -> Path:
    """Save ``model`` with ``meta`` in ``folder`` as ``NAME-<hash>.distilled``; its path.

    The model is checked against :data:`TRUSTED_TYPES` first, so nothing is
    written that could not be loaded. The file appears whole or not at all
    (written beside, then renamed).
    """
    import skops.io as sio

    _check_text_reading(model, "the trained model")
    model_bytes = sio.dumps(model)
    _check_types(model_bytes, "the trained model")
    body = {**meta, "format": FORMAT, "name": name,
            "model_sha256": hashlib.sha256(model_bytes).hexdigest()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo("meta.json", _ZIP_TIME),
                         json.dumps(body, sort_keys=True, indent=1, allow_nan=False))
        archive.writestr(zipfile.ZipInfo("model.skops", _ZIP_TIME), model_bytes)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-{digest[:NAME_HASH_HEX]}{SUFFIX}"
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def file_sha256(path: Path) -> str:
    """The SHA-256 of the artifact at ``path``, after the checks of :func:`read_bytes`."""
    return hashlib.sha256(read_bytes(path)).hexdigest()


def read_bytes(path: Path) -> bytes:
    """The artifact's bytes: a regular file of at most MAX_ARTIFACT_BYTES; ArtifactError otherwise."""
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            raise ArtifactError(f"artifact {str(path)!r} {what}; train one with 'judgeq distill' or fix the path")
        with path.open("rb") as file:
            data = file.read(MAX_ARTIFACT_BYTES + 1)
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {str(path)!r} ({exc.strerror}); check its permissions") from None
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"artifact {str(path)!r} is larger than {MAX_ARTIFACT_BYTES:,} bytes; it is not ours")
    return data


def read_meta(path: Path, expected_sha256: str | None = None) -> tuple[str, dict[str, Any]]:
    """The artifact's SHA-256 and metadata, checked as :func:`load_artifact` does, without loading the model."""
    data = read_bytes(path)
    digest = _check_hash(path, data, expected_sha256)
    meta, _ = _members(path, data)
    return digest, meta


def load_artifact(path: Path, expected_sha256: str | None = None) -> Artifact:
    """The artifact at ``path``, checked (see the module docstring); ArtifactError if anything is off."""
    import skops.io as sio

    data = read_bytes(path)
    digest = _check_hash(path, data, expected_sha256)
    meta, model_bytes = _members(path, data)
    untrusted = _check_types(model_bytes, f"artifact {str(path)!r}")
    try:
        model = sio.loads(model_bytes, trusted=untrusted)
    except Exception as exc:  # skops raises several kinds; none of them may escape as a crash
        raise ArtifactError(f"artifact {str(path)!r}: its model cannot be loaded ({type(exc).__name__}: {exc}); "
                            "train it again with 'judgeq distill'") from None
    _check_text_reading(model, f"artifact {str(path)!r}")
    return Artifact(path=path, sha256=digest, meta=meta, model=model)


def _check_hash(path: Path, data: bytes, expected: str | None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    named = _NAMED.match(path.name)
    if named is None:
        raise ArtifactError(f"artifact {str(path)!r}: the name must be NAME-<16 hex>{SUFFIX}, as 'judgeq distill' "
                            "writes it (the hex is its content hash); do not rename artifacts")
    if named["hash"] != digest[:NAME_HASH_HEX]:
        raise ArtifactError(f"artifact {str(path)!r} was altered: its content hash starts {digest[:NAME_HASH_HEX]}, "
                            f"its name says {named['hash']}; restore the original or train it again")
    if expected is not None and expected != digest:
        raise ArtifactError(f"artifact {str(path)!r} is not the one this judge was resolved with (sha256 {digest[:16]}…, "
                            f"expected {expected[:16]}…); give every worker the same file")
    return digest


def _members(path: Path, data: bytes) -> tuple[dict[str, Any], bytes]:
    where = f"artifact {str(path)!r}"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = sorted(archive.namelist())
            if names != ["meta.json", "model.skops"]:
                raise ArtifactError(f"{where} holds {names}, not meta.json and model.skops; it is not a distilled judge")
            meta = json.loads(archive.read("meta.json"))
            model_bytes = archive.read("model.skops")
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise ArtifactError(f"{where} is not a distilled judge artifact ({exc}); train one with 'judgeq distill'") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ArtifactError(f"{where} has format {found!r}; this judgeq reads {FORMAT!r}: train it again")
    if meta.get("model_sha256") != hashlib.sha256(model_bytes).hexdigest():
        raise ArtifactError(f"{where}: its model does not match its metadata; train it again")
    return meta, model_bytes


def _check_types(model_bytes: bytes, where: str) -> list[str]:
    """Refuse a model holding a type or loader outside the allow-lists; the allowed ones skops would not trust."""
    import skops.io as sio

    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise ArtifactError(f"{where}: the model is not in skops format ({exc}); train it again") from None
    unknown = sorted({f"{kind} ({loader})" for kind, loader in _nodes(schema)
                      if kind not in TRUSTED_TYPES or loader not in TRUSTED_LOADERS})
    if unknown:
        raise ArtifactError(f"{where} holds types a distilled judge never has, refused unloaded: {', '.join(unknown)}")
    try:
        untrusted = [str(t) for t in sio.get_untrusted_types(data=model_bytes)]
    except Exception as exc:
        raise ArtifactError(f"{where}: the model's types cannot be read ({type(exc).__name__}: {exc})") from None
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise ArtifactError(f"{where} holds types a distilled judge never has, refused unloaded: {', '.join(refused)}")
    return untrusted


def _check_text_reading(model: Any, where: str) -> None:
    """ArtifactError unless every vectorizer in ``model`` reads text as :data:`TEXT_READING` says."""
    for vectorizer in _vectorizers(model):
        for name, allowed in TEXT_READING.items():
            value = getattr(vectorizer, name, None)
            if isinstance(value, list):  # a tuple written by other means reads back as a list
                value = tuple(value)
            if value != allowed:
                raise ArtifactError(f"{where}: its text vectorizer has {name} = {value!r:.80}, which "
                                    f"'judgeq distill' never writes (it writes {allowed!r}); refused before "
                                    "reading any text: train the judge again with 'judgeq distill'")


def _vectorizers(model: Any) -> Iterator[Any]:
    """Every HashingVectorizer reachable from ``model`` (a pipeline's steps and a transformer's fitted copies)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    seen: set[int] = set()
    stack = [model]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, HashingVectorizer):
            yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif hasattr(item, "__dict__") and type(item).__module__.startswith("sklearn."):
            stack.extend(vars(item).values())


def _nodes(node: Any) -> Iterator[tuple[str, str]]:
    """("module.Class", loader) of every node of a skops schema."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item or "__loader__" in item:
                yield f"{item.get('__module__')}.{item.get('__class__')}", str(item.get("__loader__"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
