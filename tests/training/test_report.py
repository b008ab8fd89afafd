import numpy as np
import pandas as pd
import pytest

from tfresnet.training import report


def test_evaluate_counts_confusion_loss_and_misclassified():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 1, 1, 2])
    batches = [(probs[:2], labels[:2]), (probs[2:], labels[2:])]
    result = report.evaluate(lambda x, training: x, batches, num_classes=3)
    assert result["accuracy"] == 0.75 and result["examples"] == 4
    assert result["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert result["per_class_accuracy"] == [1.0, 0.5, 1.0]
    assert result["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.3, 0.8])), rel=1e-6)
    images, true, pred = result["misclassified"]
    assert len(images) == 1 and true[0] == 1 and pred[0] == 0


def test_history_is_repaired_and_deduplicated(tmp_path):
    path = tmp_path / "history.csv"
    # Epoch 1 logged twice (killed after the row, before the backup), then a row cut by a kill.
    path.write_text("epoch,loss\n0,1.0\n1,0.8\n1,0.7\n2,0.")
    report.repair_history(str(path))
    assert path.read_text().endswith("1,0.7\n")
    history = report.deduplicate_history(str(path))
    assert list(history["epoch"]) == [0, 1] and list(history["loss"]) == [1.0, 0.7]
    assert list(pd.read_csv(path)["epoch"]) == [0, 1]  # written back deduplicated
