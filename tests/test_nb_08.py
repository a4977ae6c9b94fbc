"""Notebook 08 runs its FULL CIFAR-10 code path in SMOKE mode, on a generated archive in CIFAR's format."""
import pytest


@pytest.mark.notebook
def test_nb_08_cifar10_resnet20(run_notebook):
    res = run_notebook("08_cifar10_resnet20")
    assert res["source"] == "fake" and res["smoke"] is True
    assert res["n_train"] == 180 and res["n_test"] == 40  # 5 x 40 generated images, 10 % held out for val
    (row,) = res["rows"]
    assert row["metric"] == "l2" and row["lut_epochs"] >= 3
    for key in ("fp32_acc", "lut_acc_int8"):
        assert 0.0 <= row[key] <= 100.0
    assert abs(row["fp32_acc"] - row["lut_acc_int8"] - row["drop_pt"]) < 1e-9
    assert [s["stage"] for s in res["stages"]] == ["calibrate", "centroids", "joint", "lut_qat"]
