"""Checkpoints: pickle-free files, atomic writes, exact resume after a SIGKILL-ed process,
unreadable files refused with one clear error."""

from __future__ import annotations

import io
import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import losslab.train.checkpoint as ckpt
import losslab.train.trainer as trainer_module
from losslab.train.callbacks import Callback, EarlyStopping, LambdaCallback, ModelCheckpoint
from losslab.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    read_metadata,
    save_checkpoint,
    save_model,
)
from losslab.train.layers import GELU, Dropout, LeakyReLU, Linear, Sequential, Softmax, mlp
from losslab.train.schedules import StepLR
from losslab.train.trainer import Trainer

# The training run used by the resume tests; executed both in a child process and in-process.
SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from losslab.train.callbacks import EarlyStopping, LambdaCallback
    from losslab.train.layers import mlp
    from losslab.train.schedules import CosineAnnealing
    from losslab.train.trainer import Trainer

    EPOCHS = 12

    def build(seed=5):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(96, 4)).astype("float32")
        y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
        model = mlp([4, 32, 16, 3], dropout=0.25, seed=seed)
        trainer = Trainer(model, "cross_entropy", "adam", lr=0.01, seed=seed,
                          schedule=CosineAnnealing(0.01, t_max=EPOCHS, warmup_steps=2))
        return trainer, X, y

    def run(path, resume=False, sleep=0.0):
        trainer, X, y = build()
        callbacks = [EarlyStopping(patience=100)]
        if sleep:
            callbacks.append(LambdaCallback(on_epoch_end=lambda t, e, logs: time.sleep(sleep)))
        trainer.fit(X, y, epochs=EPOCHS, batch_size=16, validation_split=0.25,
                    callbacks=callbacks, checkpoint_path=path, resume=resume)
        return trainer

    if __name__ == "__main__":
        run(sys.argv[1], sleep=float(sys.argv[2]))
    """
)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train_script.py"
    path.write_text(SCRIPT)
    return runpy.run_path(str(path), run_name="losslab_test_script"), path


def _params(trainer):
    return {k: v.copy() for k, v in trainer.model.parameters().items()}


def test_sigkill_then_resume_is_bit_identical(script, tmp_path):
    ns, path = script
    reference = ns["run"](str(tmp_path / "uninterrupted.npz"))
    ckpt_path = tmp_path / "run.npz"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(path), str(ckpt_path), "0.3"], env=env)
    try:
        deadline = time.monotonic() + 60
        epoch = 0
        while time.monotonic() < deadline:
            if ckpt_path.exists():
                epoch = read_metadata(ckpt_path)["trainer"]["epoch"]
                if epoch >= 3:
                    break
            assert proc.poll() is None, "training finished before it could be interrupted"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    saved = read_metadata(ckpt_path)["trainer"]["epoch"]
    assert 3 <= saved < ns["EPOCHS"], saved  # killed part-way
    resumed = ns["run"](str(ckpt_path), resume=True)
    assert resumed.epoch == ns["EPOCHS"]
    a, b = _params(reference), _params(resumed)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert resumed.history.history.keys() == reference.history.history.keys()
    for k in reference.history.history:
        np.testing.assert_array_equal(resumed.history[k], reference.history[k], err_msg=k)
    assert resumed.optimizer.lr == reference.optimizer.lr


def test_in_process_interrupt_and_resume(script, tmp_path):
    """Interrupt by an exception after epoch k (any k), resume: same parameters."""
    ns, _ = script
    reference = _params(ns["run"](str(tmp_path / "ref.npz")))

    class Crash(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 6:
                raise KeyboardInterrupt

    trainer, X, y = ns["build"]()
    path = str(tmp_path / "crash.npz")
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, epochs=ns["EPOCHS"], batch_size=16, validation_split=0.25,
                    callbacks=[EarlyStopping(patience=100), Crash()], checkpoint_path=path)
    assert read_metadata(path)["trainer"]["epoch"] == 6  # epoch 6's own save never happened
    resumed = ns["run"](path, resume=True)
    for k, v in _params(resumed).items():
        np.testing.assert_array_equal(v, reference[k], err_msg=k)


def test_checkpoint_round_trip_state(tmp_path):
    X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    t = Trainer(mlp([4, 8, 3], dropout=0.5, seed=1), "cross_entropy", "adam", lr=0.01, seed=1)
    es = EarlyStopping(monitor="loss", patience=50)
    t.fit(X, y, epochs=3, batch_size=8, callbacks=[es])
    path = tmp_path / "c.npz"
    save_checkpoint(t, path)
    t2 = Trainer(mlp([4, 8, 3], dropout=0.5, seed=9), "cross_entropy", "adam", lr=0.5, seed=9)
    es2 = EarlyStopping(monitor="loss", patience=50)
    t2.callbacks = [es2]
    load_checkpoint(t2, path)
    for k, v in t.model.parameters().items():
        np.testing.assert_array_equal(v, t2.model.parameters()[k])
    assert t2.epoch == 3 and t2.optimizer.lr == 0.01 and t2.history.history == t.history.history
    s1, s2 = t.optimizer.state_dict()["state"], t2.optimizer.state_dict()["state"]
    for name in s1:
        for key in s1[name]:
            np.testing.assert_array_equal(s1[name][key], s2[name][key])
    assert t2.shuffle_rng.bit_generator.state == t.shuffle_rng.bit_generator.state
    assert t2.model.rng_states() == t.model.rng_states()
    assert es2.best == es.best and es2.best_epoch == es.best_epoch
    for k in es.best_weights:
        np.testing.assert_array_equal(es.best_weights[k], es2.best_weights[k])


def test_checkpoint_wrong_architecture(tmp_path):
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    save_checkpoint(t, tmp_path / "c.npz")
    other = Trainer(mlp([4, 9, 3], seed=0), "cross_entropy", "adam")
    with pytest.raises(ValueError, match="shape"):
        load_checkpoint(other, tmp_path / "c.npz")
    sgd = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "sgd")
    with pytest.raises(ValueError, match="optimizer"):
        load_checkpoint(sgd, tmp_path / "c.npz")


def test_model_round_trip_every_layer_type(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(5, 7, rng=rng, dtype="float64"), LeakyReLU(0.2), Dropout(0.1),
        Linear(7, 6, bias=False, init="torch", rng=rng, dtype="float64"), GELU("tanh"),
        Linear(6, 3, rng=rng, dtype="float64"), Softmax(),
    )
    path = tmp_path / "m.npz"
    save_model(model, path, extra={"note": "hi", "mean": np.arange(3.0)})
    loaded, extra = load_model(path, with_extra=True)
    assert extra["note"] == "hi"
    np.testing.assert_array_equal(extra["mean"], np.arange(3.0))
    x = rng.normal(size=(4, 5))
    model.eval()
    loaded.eval()
    np.testing.assert_array_equal(model.forward(x), loaded.forward(x))
    assert loaded.config() == model.config()


def test_files_load_without_pickle(tmp_path):
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    save_checkpoint(t, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    # a file that needs pickle is refused, with no code run
    np.savez(tmp_path / "evil.npz", __meta__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable losslab file"):
        load_model(tmp_path / "evil.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a losslab file"):
        load_model(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="expected"):
        load_checkpoint(t, _saved_model(tmp_path))


def _saved_model(tmp_path):
    path = tmp_path / "model.npz"
    save_model(mlp([4, 8, 3], seed=0), path)
    return path


@pytest.mark.parametrize("crash_in", ["savez", "fsync", "replace"])
def test_crash_while_writing_keeps_previous_checkpoint(tmp_path, monkeypatch, crash_in):
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    path = tmp_path / "c.npz"
    save_checkpoint(t, path)
    before = path.read_bytes()
    t.model[0].weight += 1.0  # the state the interrupted save was writing
    t.epoch = 7

    def partial_savez(f, **arrays):
        f.write(b"PK\x03\x04 torn zip")  # half a file, then the process 'dies'
        raise KeyboardInterrupt

    def boom(*a, **k):
        raise KeyboardInterrupt

    if crash_in == "savez":
        monkeypatch.setattr(ckpt.np, "savez", partial_savez)
    elif crash_in == "fsync":
        monkeypatch.setattr(ckpt.os, "fsync", boom)
    else:
        monkeypatch.setattr(ckpt.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(t, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert read_metadata(path)["trainer"]["epoch"] == 0
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]  # the temp file was removed


def test_checkpoint_every_and_final_save(tmp_path, monkeypatch):
    X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.arange(16) % 3
    saves = []
    orig = ckpt.save_checkpoint
    monkeypatch.setattr(
        trainer_module, "save_checkpoint", lambda tr, p: (saves.append(tr.epoch), orig(tr, p))
    )
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    t.fit(X, y, epochs=5, checkpoint_path=tmp_path / "c.npz", checkpoint_every=2)
    assert saves == [2, 4, 5]


# -- the callbacks' state survives a SIGKILL ---------------------------------------------------

# A run whose validation loss is lowest at epoch 5 and rises after it (EarlyStopping with
# patience 6 stops it after epoch 11). The child kills itself with SIGKILL in the middle of epoch
# 8, three epochs after the best one: a resume that forgot ModelCheckpoint's best value would
# overwrite best.npz with epoch 8's worse model, and one that forgot EarlyStopping's counter would
# train on past epoch 11.
CALLBACK_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from losslab.train.callbacks import EarlyStopping, LambdaCallback, ModelCheckpoint
    from losslab.train.layers import mlp
    from losslab.train.trainer import Trainer

    EPOCHS, KILL_EPOCH = 30, 8

    def run(directory, resume=False, kill=False):
        rng = np.random.default_rng(1)
        X = rng.normal(size=(80, 6)).astype("float32")
        y = ((X[:, 0] + 0.5 * rng.normal(size=80)) > 0).astype(np.int64) + (X[:, 1] > 0.8)
        trainer = Trainer(mlp([6, 64, 64, 3], dropout=0.1, seed=3), "cross_entropy", "adam",
                          lr=0.02, seed=3)
        es = EarlyStopping(patience=6)
        mc = ModelCheckpoint(os.path.join(directory, "best.npz"), save_best_only=True)
        callbacks = [mc, es]
        if kill:
            def die(t, epoch, batch, logs):
                if epoch == KILL_EPOCH and batch == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
            callbacks.append(LambdaCallback(on_batch_end=die))
        trainer.fit(X, y, epochs=EPOCHS, batch_size=16, validation_split=0.25,
                    callbacks=callbacks, checkpoint_path=os.path.join(directory, "run.npz"),
                    resume=resume)
        return trainer, es, mc

    if __name__ == "__main__":
        run(sys.argv[1], kill=True)
    """
)


def test_sigkill_then_resume_keeps_best_model_and_early_stopping_state(tmp_path):
    path = tmp_path / "callback_script.py"
    path.write_text(CALLBACK_SCRIPT)
    ns = runpy.run_path(str(path), run_name="losslab_test_callback_script")
    (tmp_path / "ref").mkdir()
    (tmp_path / "killed").mkdir()
    ref, ref_es, ref_mc = ns["run"](str(tmp_path / "ref"))
    assert ref_mc.best_epoch == ref_es.best_epoch < ns["KILL_EPOCH"] - 1  # the scenario holds
    assert 0 <= ref_es.stopped_epoch < ns["EPOCHS"] - 1

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(path), str(tmp_path / "killed")], env=env,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL
    state = read_metadata(tmp_path / "killed" / "run.npz")["trainer"]
    assert state["epoch"] == ns["KILL_EPOCH"]  # killed mid-epoch, after epoch 7's save
    saved_es = next(v for k, v in state["callbacks"].items() if k.startswith("EarlyStopping"))
    assert saved_es["wait"] > 0  # the counter was running when the process died

    resumed, es, mc = ns["run"](str(tmp_path / "killed"), resume=True)
    for a, b in ((es, ref_es), (mc, ref_mc)):
        assert a.state_dict().keys() == b.state_dict().keys()
        for k, v in b.state_dict().items():
            if isinstance(v, dict):
                for name in v:
                    np.testing.assert_array_equal(a.state_dict()[k][name], v[name])
            else:
                assert a.state_dict()[k] == v, k
    assert resumed.epoch == ref.epoch == ref_es.stopped_epoch + 1
    best, best_ref = load_model(tmp_path / "killed" / "best.npz"), load_model(
        tmp_path / "ref" / "best.npz")
    for k, v in best_ref.parameters().items():
        np.testing.assert_array_equal(best.parameters()[k], v, err_msg=k)
    for k, v in ref.model.parameters().items():  # restore_best_weights: the same best model
        np.testing.assert_array_equal(resumed.model.parameters()[k], v, err_msg=k)
    assert resumed.history.history.keys() == ref.history.history.keys()
    for k in ref.history.history:
        np.testing.assert_array_equal(resumed.history[k], ref.history[k], err_msg=k)


def test_callback_state_is_found_by_key_not_position(tmp_path):
    X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    t = Trainer(mlp([4, 8, 3], seed=1), "cross_entropy", "adam", lr=0.01, seed=1)
    es = EarlyStopping(monitor="loss", patience=50)
    mc = ModelCheckpoint(str(tmp_path / "m.npz"), monitor="loss", save_best_only=True)
    t.fit(X, y, epochs=3, batch_size=8, callbacks=[es, mc])
    save_checkpoint(t, tmp_path / "c.npz")
    t2 = Trainer(mlp([4, 8, 3], seed=1), "cross_entropy", "adam", lr=0.01, seed=1)
    es2 = EarlyStopping(monitor="loss", patience=50)
    mc2 = ModelCheckpoint(str(tmp_path / "m.npz"), monitor="loss", save_best_only=True)
    other = EarlyStopping(monitor="val_loss")  # another key: keeps its own (fresh) state
    t2.callbacks = [LambdaCallback(), mc2, other, es2]
    load_checkpoint(t2, tmp_path / "c.npz")
    assert (es2.best, es2.best_epoch, es2.wait) == (es.best, es.best_epoch, es.wait)
    assert (mc2.best, mc2.best_epoch) == (mc.best, mc.best_epoch) and mc.best_epoch == 2
    assert other.best == np.inf and other.best_epoch == -1


@pytest.mark.parametrize("cls", [EarlyStopping, ModelCheckpoint])
def test_missing_monitor_names_it_and_the_available_keys(tmp_path, cls):
    X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.arange(16) % 3
    cb = (EarlyStopping(monitor="val_acuracy") if cls is EarlyStopping
          else ModelCheckpoint(str(tmp_path / "m.npz"), monitor="val_acuracy",
                               save_best_only=True))
    seen = []
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    with pytest.raises(ValueError, match=r"'val_acuracy'.*available: loss, accuracy, "
                                         r"val_loss, val_accuracy, lr") as info:
        t.fit(X, y, epochs=3, validation_split=0.25,
              callbacks=[LambdaCallback(on_epoch_end=lambda *a: seen.append(a[1])), cb])
    assert cls.__name__ in str(info.value)
    assert seen == [0]  # at the first epoch's end
    assert not (tmp_path / "m.npz").exists()


def test_trainer_state_dict_continues_exactly():
    X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 3

    a = Trainer(mlp([4, 16, 3], dropout=0.3, seed=2), "cross_entropy", "adam", lr=0.01, seed=2,
                schedule=StepLR(0.01, step_size=2))
    a.fit(X, y, epochs=2, batch_size=8)
    state = a.state_dict()
    b = Trainer(mlp([4, 16, 3], dropout=0.3, seed=7), "cross_entropy", "adam", lr=0.5, seed=7,
                schedule=StepLR(0.5, step_size=5))
    b.load_state_dict(state)
    a.fit(X, y, epochs=3, batch_size=8)
    b.fit(X, y, epochs=3, batch_size=8)
    for k, v in a.model.parameters().items():
        np.testing.assert_array_equal(v, b.model.parameters()[k], err_msg=k)
    assert a.history.history == b.history.history
    # the state is a copy: training on did not change it
    assert state["epoch"] == 2 and len(state["history"]["epochs"]) == 2


def test_load_state_dict_checks_before_changing_anything():
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam", schedule="constant")
    state = t.state_dict()
    other = Trainer(mlp([4, 8, 3], seed=1), "cross_entropy", "adam", lr=0.1,
                    schedule=StepLR(0.1, step_size=2))
    before = {k: v.copy() for k, v in other.model.parameters().items()}
    with pytest.raises(ValueError, match="schedule 'Constant', not 'StepLR'"):
        other.load_state_dict(state)
    for k, v in other.model.parameters().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="dtype"):
        Trainer(mlp([4, 8, 3], seed=0, dtype="float64"), "cross_entropy", "adam",
                schedule="constant").load_state_dict(state)
    with pytest.raises(ValueError, match="no schedule"):
        Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam",
                schedule="constant").load_state_dict(
            Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam").state_dict())


# -- unreadable files: one exception, one message ----------------------------------------------


def _corrupt_files(tmp_path):
    """(name, path) of files that are not readable losslab files."""
    good = tmp_path / "good.npz"
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    save_checkpoint(t, good)
    data = good.read_bytes()
    out = {}

    def put(name, content):
        p = tmp_path / f"{name}.npz"
        p.write_bytes(content)
        out[name] = p

    put("empty", b"")
    put("truncated", data[: len(data) // 2])
    put("truncated_tail", data[:-10])
    put("garbage", b"not a model at all\n" * 10)
    flipped = bytearray(data)
    meta_at = data.find(b'"format"')
    flipped[meta_at : meta_at + 8] = b"########"  # the JSON inside is damaged, the zip intact
    put("damaged_meta", bytes(flipped))
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array([{"format": "losslab-checkpoint"}], dtype=object))
    put("pickled", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(b'{"format": "losslab-checkpoint", "version": 2}',
                                         dtype=np.uint8))
    put("incomplete", buf.getvalue())
    return out


def test_unreadable_files_raise_checkpoint_error_everywhere(tmp_path):
    files = _corrupt_files(tmp_path)
    X = np.zeros((8, 4), dtype="float32")
    y = np.arange(8) % 3
    for name, path in files.items():
        t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
        calls = [
            lambda p=path: load_model(p),
            lambda p=path, t=t: load_checkpoint(t, p),
            lambda p=path, t=t: t.fit(X, y, epochs=1, checkpoint_path=p, resume=True),
        ]
        for call in calls:
            with pytest.raises(CheckpointError, match="not a readable losslab file") as info:
                call()
            assert isinstance(info.value, ValueError)
            message = str(info.value)
            assert str(path) in message, name
            assert "allow_pickle" not in message and "pickle.load" not in message, name
        assert t.epoch == 0 and len(t.history) == 0  # nothing trained from a bad file
    assert path.read_bytes() == files["incomplete"].read_bytes()  # inputs left alone


def test_resume_needs_a_checkpoint_path():
    t = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam")
    with pytest.raises(ValueError, match="checkpoint_path"):
        t.fit(np.zeros((4, 4)), np.arange(4) % 3, resume=True)


def test_resume_with_a_per_batch_schedule_is_exact(tmp_path):
    from losslab.train.schedules import OneCycle

    X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 3

    def make():
        return Trainer(mlp([4, 16, 3], seed=2), "cross_entropy", "adam", seed=2,
                       schedule=OneCycle(0.05, total_steps=6 * 5, interval="batch"))

    ref = make()
    ref.fit(X, y, epochs=6, batch_size=8)

    class Crash(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 3:
                raise KeyboardInterrupt

    t = make()
    with pytest.raises(KeyboardInterrupt):
        t.fit(X, y, epochs=6, batch_size=8, callbacks=[Crash()], checkpoint_path=tmp_path / "c")
    resumed = make()
    resumed.fit(X, y, epochs=6, batch_size=8, checkpoint_path=tmp_path / "c", resume=True)
    assert resumed.schedule.last_step == ref.schedule.last_step == 30
    for k, v in ref.model.parameters().items():
        np.testing.assert_array_equal(resumed.model.parameters()[k], v, err_msg=k)
    assert resumed.history.history == ref.history.history
