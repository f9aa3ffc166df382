"""Classify a corpus on a Ray cluster with Ray Data: the ``[ray]`` extra (``pip install 'swarmedge[ray]'``).

swarmedge distributes nothing itself: Ray Data reads, schedules and collects; swarmedge gives it

- :class:`BundleClassifier`, a callable class for ``ray.data.Dataset.map_batches`` that opens
  a bundle once per Ray worker (actor) and classifies a numpy batch (a ``"text"`` or an
  ``"image"`` column);
- :func:`classify_dataset`, that ``map_batches`` call with an actor pool of one CPU per actor;
- :func:`classify_corpus`, the whole job: read a ``.txt``/``.jsonl`` (optionally ``.gz``) file,
  classify it on the cluster and write JSON Lines records identical, byte for byte, to those of
  ``swarmedge run BUNDLE --file CORPUS``.

Each actor runs :class:`swarmedge.runtimes.Classifier` with one thread, and a Classifier's
result for an input does not depend on what else is classified with it, so the cluster's
results equal a single machine's. Ray is imported here only, when a function needs it: the
device install (``pip install swarmedge``) never pulls it in. Recipe: docs/RAY.md.

On the command line: ``swarmedge run BUNDLE --file CORPUS -o results.jsonl --ray auto``.
Errors that Ray wraps come back as swarmedge's one line through ``swarmedge.ray_errors``.
"""

import json
import os
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError, SwarmedgeError, require_extra
from swarmedge.ray_errors import ray_errors

# Columns BundleClassifier adds, in Prediction.to_dict() order; the token columns only for texts.
PREDICTION_COLUMNS = ("label", "index", "probability", "scores")
TOKEN_COLUMNS = ("tokens_kept", "tokens_total", "unknown_share", "tokens_total_is_lower_bound")
# Columns classify_corpus's reader adds beside "text": the input's position, and its "id" as JSON
# text (null when the record has none), so that any JSON id survives Arrow and numpy unchanged.
POSITION, ID_JSON = "position", "id_json"
# Bytes of texts per block the reader hands on (about 400 short reviews): blocks, not rows, are what
# Ray spreads over the actors, so a file read as one block would keep all but one actor idle.
BLOCK_BYTES = 64 << 10


def _ray():
    """``ray`` with ``ray.data``, or MissingExtraError naming ``pip install 'swarmedge[ray]'``."""
    require_extra("ray.data", "ray")
    import ray
    import ray.data

    return ray


class BundleClassifier:
    """Classify Ray Data numpy batches with a bundle: the callable class for ``map_batches``.

    Ray constructs it once per worker (actor), so the bundle is opened, checked and loaded
    once per worker, not once per batch. ``bundle`` is a bundle folder's path, readable on
    every node; ``precision`` "int8"/"fp32" (None: the bundle's default). The actor's
    Classifier uses one thread (``threads=1``): run one actor per CPU.

    ``__call__(batch)`` takes a batch in Ray's numpy format, ``dict[str, np.ndarray]``:

    - for a text bundle a ``"text"`` column of str (object or unicode array);
    - for a digit bundle an ``"image"`` column of digits, shape (N, 28, 28) (or any layout
      ``Classifier.classify_images`` takes), uint8 0..255 or float 0..1.

    It returns the batch's other columns unchanged (an ``"id"``, say) plus, per row,
    ``label`` (str, object array), ``index`` (int64), ``probability`` (float64), ``scores``
    (float64, shape (N, number of labels)) and, for texts, ``tokens_kept``, ``tokens_total``
    (int64), ``unknown_share`` (float64) and ``tokens_total_is_lower_bound`` (bool): the
    fields of ``Prediction.to_dict()``. The input column is dropped (a corpus's texts are not
    copied into its results) unless ``keep_inputs``.

    Raises InputError (one line) for a batch without the bundle's input column, a text that
    is not a non-empty str (naming its row, and its ``id`` when the batch has one), or digits
    ``classify_images`` refuses; BundleError for a bundle that cannot be opened.
    """

    def __init__(self, bundle, precision: str | None = None, keep_inputs: bool = False):
        from swarmedge.runtimes import Classifier

        self.classifier = Classifier(bundle, precision=precision, threads=1)
        self.keep_inputs = keep_inputs
        self.column = "text" if self.classifier.kind == "text" else "image"

    def __call__(self, batch: dict) -> dict:
        c = self.classifier
        if self.column not in batch:
            other = "image" if self.column == "text" else "text"
            what = (f"this bundle classifies {'texts' if self.column == 'text' else 'digit images'}"
                    + (f", not {other}s" if other in batch else ""))
            raise InputError(f'{what}: the dataset needs a "{self.column}" column, it has {sorted(batch)}')
        values = batch[self.column]
        n = len(values)
        out = {k: v for k, v in batch.items() if k != self.column or self.keep_inputs}
        if n == 0:
            preds = []
        elif self.column == "text":
            texts = [_checked_text(t, i, batch) for i, t in enumerate(values)]
            preds = c.classify_texts(texts)
        else:
            preds = c.classify_images(_stack(values))
        labels = np.empty(n, dtype=object)
        labels[:] = [p.label for p in preds]
        out["label"] = labels
        out["index"] = np.array([p.index for p in preds], dtype=np.int64)
        out["probability"] = np.array([p.probability for p in preds], dtype=np.float64)
        out["scores"] = np.array([p.scores for p in preds], dtype=np.float64).reshape(n, len(c.labels))
        if self.column == "text":
            for name, dtype in zip(TOKEN_COLUMNS, (np.int64, np.int64, np.float64, bool)):
                out[name] = np.array([getattr(p, name) for p in preds], dtype=dtype)
        return out


def _checked_text(text, row: int, batch: dict) -> str:
    """``text`` as classify_texts takes it, or InputError naming the row (and its id)."""
    from swarmedge.runtimes.text import check_text

    where = f"row {row} of a batch"
    if isinstance(batch.get(ID_JSON, [None] * (row + 1))[row], str):  # classify_corpus's rows
        where = f"the row with id {batch[ID_JSON][row]}"
    elif "id" in batch and batch["id"][row] is not None:
        where = f"the row with id {json.dumps(_plain(batch['id'][row]), default=str)}"
    if text is None:
        raise InputError(f'{where} has no "text": give every row a non-empty str in its "text" column')
    if isinstance(text, np.str_):
        text = str(text)
    return check_text(text, f'the "text" of {where}')


def _plain(value):
    """A numpy scalar as the Python value json takes."""
    return value.item() if isinstance(value, np.generic) else value


def _stack(values) -> np.ndarray:
    """An "image" column as one array: Ray gives a (N, 28, 28) array, or an object array of
    per-row arrays when the rows' shapes differ (which classify_images then refuses)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values
    try:
        return np.stack([np.asarray(v) for v in values])
    except ValueError:
        shapes = sorted({np.shape(v) for v in values})
        raise InputError(f'the "image" column holds digits of different shapes {shapes}; give each as (28, 28)') \
            from None


def classify_dataset(ds, bundle, *, precision: str | None = None, batch_size: int = 256,
                     concurrency: int | None = None, keep_inputs: bool = False):
    """``ds`` classified on the cluster: ``ds.map_batches(BundleClassifier, ...)``, lazily.

    ``ds`` is a ``ray.data.Dataset`` with a ``"text"`` column (text bundle) or an ``"image"``
    column of (28, 28) digits (digit bundle); see :class:`BundleClassifier` for the columns
    that come back. ``bundle`` must be readable at the same path on every node. Each actor
    opens the bundle once and uses one CPU (``num_cpus=1``); ``concurrency`` actors run
    (default: the cluster's CPUs; the cluster is started with ``ray.init()`` when none is).
    ``batch_size`` rows go to an actor at a time.

    Nothing runs until the result is consumed (``iter_batches``, ``write_parquet``, ...).
    With every CPU taken by an actor, reads that ask for a CPU would wait for ever: read
    with ``num_cpus=0`` (``ray.data.read_parquet(..., num_cpus=0)``) or pass a ``concurrency``
    below the CPU count. Errors inside Ray reach you wrapped; ``swarmedge.ray_errors.unwrap``
    (or ``with ray_errors():``) gives back swarmedge's one-line error.

    Raises InputError for ``batch_size`` or ``concurrency`` below 1; MissingExtraError without
    ray. Example::

        ds = ray.data.read_parquet("s3://bucket/reviews/", num_cpus=0)
        classify_dataset(ds, "/shared/small.bundle").write_parquet("s3://bucket/results/")
    """
    ray = _ray()
    for name, value in (("batch_size", batch_size), ("concurrency", concurrency)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if concurrency is None:
        if not ray.is_initialized():
            ray.init()
        concurrency = max(1, int(ray.cluster_resources().get("CPU", 1)))
    out = ds.map_batches(
        BundleClassifier,
        fn_constructor_kwargs={"bundle": str(bundle), "precision": precision, "keep_inputs": keep_inputs},
        batch_format="numpy",
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=1,
        udf_modifying_row_count=False,
    )
    out.context.raise_original_map_exception = True  # an InputError, not "UDF failed to process a data block"
    return out


def corpus_dataset(source):
    """A ``ray.data.Dataset`` of the texts of ``source`` (a .txt or .jsonl file, optionally .gz),
    read exactly as ``swarmedge run --file`` reads it (``runtimes.stream.file_items``: UTF-8
    only, blank lines skipped, every JSON Lines record checked, errors naming ``FILE:LINE``).

    Columns: ``position`` (int64, the input's index in the file, from 0; blank lines are not
    inputs), ``text`` (str) and ``id_json`` (the record's ``"id"`` as JSON text, None when it
    has none). The file is read as a stream by one Ray task, on whichever node runs it: the
    path must be readable there (shared storage); its rows are handed on in blocks of about
    ``BLOCK_BYTES`` as they are read, so that every actor gets work. The read takes no CPU
    slot (``num_cpus=0``): with one actor per CPU, a read that waited for a CPU would wait for
    ever.
    """
    ray = _ray()
    ds = ray.data.from_items([{"path": str(source)}]).map_batches(
        _read_corpus, batch_size=1, batch_format="numpy", num_cpus=0)
    ds.context.target_max_block_size = BLOCK_BYTES  # this dataset's own context, not the global one
    ds.context.raise_original_map_exception = True
    return ds


def _read_corpus(batch: dict):
    """map_batches generator: the rows of the one file named in ``batch["path"]``."""
    from swarmedge.runtimes.results import NO_ID
    from swarmedge.runtimes.stream import file_items

    for path in batch["path"]:
        for items in file_items(Path(str(path))):
            texts = np.empty(len(items), dtype=object)
            texts[:] = [i.value for i in items]
            ids = np.empty(len(items), dtype=object)
            ids[:] = [None if i.id is NO_ID else json.dumps(i.id, ensure_ascii=False) for i in items]
            yield {POSITION: np.array([i.position for i in items], dtype=np.int64), "text": texts, ID_JSON: ids}


def records_of(batch: dict) -> list[dict]:
    """The ``swarmedge run`` result records of a classified numpy batch (with ``position`` and
    ``id_json`` columns, as :func:`classify_corpus` makes them): ``runtimes.results.result_record``
    of each row, so that the JSON is the single-machine run's."""
    from swarmedge.runtimes import Prediction
    from swarmedge.runtimes.results import NO_ID, result_record

    names = (*PREDICTION_COLUMNS, *(TOKEN_COLUMNS if "tokens_kept" in batch else ()))
    columns = [batch[k].tolist() for k in names]
    out = []
    for position, id_json, row in zip(batch[POSITION].tolist(), batch[ID_JSON], zip(*columns)):
        record_id = json.loads(id_json) if isinstance(id_json, str) else NO_ID  # no id: None, or NaN in a block
        out.append(result_record(position, None, Prediction(**dict(zip(names, row))), record_id))
    return out


def classify_corpus(bundle, source, output, *, address: str | None = None, precision: str | None = None,
                    batch_size: int = 256, concurrency: int | None = None, overwrite: bool = False,
                    progress: bool = False) -> int:
    """Classify the texts of ``source`` on a Ray cluster and write their results; returns how many.

    ``source`` is a .txt (one text per line) or .jsonl (``{"text": …, "id": …}`` per line) file,
    optionally .gz, read as ``swarmedge run --file`` reads it (:func:`corpus_dataset`).
    ``address`` is the cluster to join (``"auto"``, ``"ray://head:10001"``; None: the one
    already joined, else ``ray.init()``, which starts a local one and shuts it down at the end).
    ``concurrency``, ``batch_size``, ``precision`` as for :func:`classify_dataset`.

    ``output`` is either

    - a file (``results.jsonl``): the records of ``swarmedge run BUNDLE --file SOURCE``, one JSON
      object per input in input order, ``{"position": 0, "id": …, "label": …, "index": …,
      "probability": …, "scores": […], "tokens_kept": …, "tokens_total": …, "unknown_share": …}``,
      identical byte for byte. Rows stream back to this process in order and are written as they
      come (memory does not grow with the corpus), to a temporary file swapped in at the end;
    - a folder (an existing one, or a path ending in ``/``): the same records, written by the
      workers as ``*.jsonl`` files, in no particular order across files (sort by ``position``).

    Raises InputError (one line, never a Ray traceback) for a missing source or bundle, a bad
    line or record (naming ``FILE:LINE``), a digit bundle, an existing output without
    ``overwrite``; BundleError for a bad bundle; MissingExtraError without ray.
    """
    from swarmedge.runtimes import Bundle

    ray = _ray()
    source, folder = Path(source), str(output).endswith(("/", os.sep)) or Path(output).is_dir()
    output = Path(output)
    if not source.is_file():
        raise InputError(f"file not found: {source}" if not source.exists() else
                         f"{source} is a folder: give one .txt or .jsonl file (classify_dataset takes many)")
    kind = Bundle.open(bundle).manifest["preprocessing"]["kind"]
    if kind != "text":
        raise InputError(f"{bundle} classifies digit images, and {source.name} holds texts: give a text bundle, "
                         "or classify images with classify_dataset and an \"image\" column")
    if folder and output.is_dir() and any(output.iterdir()):  # shards of two runs would mix, overwrite or not
        raise InputError(f"{output} is a folder that is not empty: give an empty or new folder for the shards")
    if not folder and output.exists() and not overwrite:
        raise InputError(f"{output} exists: pass --overwrite (overwrite=True) to replace it, or choose another output")
    if not folder and not output.parent.is_dir():
        raise InputError(f"cannot write {output}: folder {output.parent} does not exist")

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, ValueError) as exc:  # no cluster there, or an address Ray cannot parse
            reason = str(exc).strip().split("\n", 1)[0].split(". ")[0]
            raise InputError(f"cannot join a Ray cluster at {address!r} ({reason}): start one with `ray start --head`, "
                             "or use --ray local for this machine's cores") from None
    ctx = ray.data.DataContext.get_current()
    before = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    try:
        ctx.execution_options.preserve_order = True  # results come back in input order
        ctx.enable_progress_bars = progress
        with ray_errors():
            ds = classify_dataset(corpus_dataset(source), bundle, precision=precision, batch_size=batch_size,
                                  concurrency=concurrency)
            if folder:
                return _write_folder(ds, output)
            return _write_file(ds, output, batch_size)
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = before
        if started:
            ray.shutdown()


def _write_file(ds, output: Path, batch_size: int) -> int:
    """Stream the classified rows of ``ds`` back in order and append their records to a
    temporary file beside ``output``, swapped in once every row is written."""
    from swarmedge.runtimes.results import encode_records

    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    done = 0
    try:
        with open(tmp, "wb") as f:
            for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
                records = records_of(batch)
                positions = [r["position"] for r in records]
                if positions != list(range(done, done + len(records))):  # what preserve_order promises
                    raise SwarmedgeError(f"results came back out of order (positions {positions[0]}.. after "
                                         f"{done}); this is a bug: report it")
                f.write(encode_records(records))
                done += len(records)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return done


def _write_folder(ds, output: Path) -> int:
    """Have the workers write the records of ``ds`` as JSON Lines files into folder ``output``."""
    _ray()
    from ray.data.datasource import BlockBasedFileDatasink

    from swarmedge.runtimes.results import encode_records

    class RecordsDatasink(BlockBasedFileDatasink):
        def __init__(self, path):
            super().__init__(path, file_format="jsonl")

        def write_block_to_file(self, block, file):
            file.write(encode_records(records_of(block.to_batch_format("numpy"))))

    ds.write_datasink(RecordsDatasink(str(output)))  # streamed: blocks are written as they are classified
    return sum(1 for p in output.glob("*.jsonl") for _ in open(p, "rb"))
