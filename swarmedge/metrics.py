"""Classification metrics in numpy: accuracy, per-class precision/recall/F1, confusion matrix."""

import numpy as np


def classification_report(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict:
    """Accuracy, per-class and macro precision/recall/F1, and the confusion matrix.

    ``labels`` and ``predictions`` are ``(N,)`` class indices into ``label_names`` (the
    model's classes). The confusion matrix covers every class (rows: true class, columns:
    predicted class); per-class figures and their macro averages cover the classes present
    in the data (support > 0), so data holding only some of the model's classes (e.g. only
    positive reviews) is not scored against classes it cannot contain.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    k = len(label_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(0), confusion.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = actual > 0
    macro = (lambda v: float(v[present].mean())) if present.any() else (lambda v: 0.0)
    return {
        "samples": int(len(labels)),
        "accuracy": float(tp.sum() / max(len(labels), 1)),
        "macro_precision": macro(precision),
        "macro_recall": macro(recall),
        "macro_f1": macro(f1),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s, here in zip(label_names, precision, recall, f1, actual, present) if here},
        "confusion_matrix": confusion.tolist(),
        "labels": list(label_names),
    }


def format_report(report: dict) -> str:
    lines = [f"{report['model']} with {report['engine']} on {report['data']}"] if "engine" in report else []
    lines += [f"accuracy {report['accuracy']:.2%} on {report['samples']} samples   "
             f"macro precision {report['macro_precision']:.3f}  recall {report['macro_recall']:.3f}  "
             f"F1 {report['macro_f1']:.3f}"]
    absent = [n for n in report["labels"] if n not in report["per_class"]]
    if absent:
        lines.append(f"classes absent from the data (left out of the macro averages): {', '.join(absent)}")
    c = report.get("calibration")
    if c:
        wrong = c["mean_confidence_when_wrong"]
        lines.append(f"probabilities: {c['probabilities']}; ECE {c['ece']:.4f} (10 bins), NLL {c['nll']:.4f}"
                     + (f", mean confidence when wrong {wrong:.3f}" if wrong is not None else ""))
    lines.append("per class:" + "".join(f"  {n} precision {c['precision']:.3f} recall {c['recall']:.3f} "
                                        f"F1 {c['f1']:.3f} ({c['support']})" for n, c in report["per_class"].items()))
    width = max(len(n) for n in report["labels"]) + 2
    cell = max(width, 8)
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * width + "".join(f"{n:>{cell}}" for n in report["labels"]))
    for name, row in zip(report["labels"], report["confusion_matrix"]):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
