"""Classification metrics in numpy: accuracy, per-class precision/recall/F1, confusion matrix."""

import numpy as np


def classification_report(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict:
    """Accuracy, macro and per-class precision/recall/F1, and the confusion matrix
    (rows: true class, columns: predicted class)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    k = len(label_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(0), confusion.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    return {
        "samples": int(len(labels)),
        "accuracy": float(tp.sum() / max(len(labels), 1)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(label_names, precision, recall, f1, actual)},
        "confusion_matrix": confusion.tolist(),
        "labels": list(label_names),
    }


def format_report(report: dict) -> str:
    lines = [f"accuracy {report['accuracy']:.2%} on {report['samples']} samples   "
             f"macro precision {report['macro_precision']:.3f}  recall {report['macro_recall']:.3f}  "
             f"F1 {report['macro_f1']:.3f}"]
    width = max(len(n) for n in report["labels"]) + 2
    cell = max(width, 8)
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * width + "".join(f"{n:>{cell}}" for n in report["labels"]))
    for name, row in zip(report["labels"], report["confusion_matrix"]):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
