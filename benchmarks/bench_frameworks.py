"""Train and infer the study's models with nnscratch, PyTorch and Keras, and compare.

Models: the deep CNN (``zoo.deep_cnn``, 1.0M parameters), the simple CNN
(``zoo.simple_cnn``, 93k) and the MLP 784-512-10 (``zoo.basic_mlp(512)``).
PyTorch (NCHW ``nn.Sequential``) and Keras 3 get the same layer sizes; each is
measured only when importable.

* Training: batch 64, Adam(1e-3) (the deep CNN with ``clipnorm=1`` as the study,
  per-tensor clipping in PyTorch too), categorical cross-entropy, random
  MNIST-shaped float32 data; images/s over the timed steps after warm-up steps.
* Inference: 1,000 images in batches of 100 (``predict``), images/s, median pass.

Every framework runs in its own long-lived worker process (its own thread
pools and environment: nnscratch's ``GOMP_SPINCOUNT`` does not leak
into PyTorch). The parent alternates them -- round 1: nnscratch, torch; round
2: torch, nnscratch; ... -- so machine noise hits all of them alike, and
reports the median over rounds and the ratio nnscratch / best other framework.

Also measured: peak resident memory (VmHWM) while training the deep CNN, in a
fresh process per framework; the time from process start to the end of the
first deep-CNN training step in a fresh process (nnscratch: with an empty
Numba cache, then a second process with the cache the first one left); and a
per-layer time breakdown of one nnscratch deep-CNN training step, with the
GEMM FLOPs per layer and the ``np.matmul`` 1024x1024 float32 peak.

Usage::

    python benchmarks/bench_frameworks.py [--threads 2] [--rounds 5] [--steps 20]
        [--models deep_cnn,simple_cnn,mlp] [--frameworks nnscratch,torch,keras]
        [--backend numba|numpy] [--json PATH] [--markdown] [--update-doc docs/performance.md]
        [--no-memory] [--no-startup] [--no-layers]
    python benchmarks/bench_frameworks.py --from-json PATH --markdown   # re-render saved results
"""

import argparse
import collections
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

MODELS = ("deep_cnn", "simple_cnn", "mlp")
FRAMEWORKS = ("nnscratch", "torch", "keras")
# framework -> module that must be importable; tests point one at a missing module
FRAMEWORK_MODULES = {"nnscratch": "nnscratch", "torch": "torch", "keras": "keras"}
IMAGE_SHAPE = (28, 28, 1)
CLASSES = 10
# --update-doc replaces the text between these markers; one block per nnscratch backend
DOC_BEGIN = "<!-- BEGIN bench_frameworks --backend {backend} (generated: do not edit by hand) -->"
DOC_END = "<!-- END bench_frameworks --backend {backend} -->"
THREAD_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
              "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
              "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "KERAS_BACKEND",
              "NNSCRATCH_CONV_ALGORITHM", "NNSCRATCH_DENSE_PRODUCT")
GOALS = {"deep_cnn": 1.2, "simple_cnn": 1.2, "mlp": 1.0, "inference": 1.2, "startup_s": 3.0}


def framework_available(name) -> bool:
    try:
        return importlib.util.find_spec(FRAMEWORK_MODULES[name]) is not None
    except (ImportError, ValueError):
        return False


def random_data(n, seed=0):
    """MNIST-shaped float32 images in [0, 1) (NHWC) and integer labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((n, *IMAGE_SHAPE), dtype=np.float32), rng.integers(0, CLASSES, n)


# ---------------------------------------------------------------- frameworks
# A runner hides one framework: build(model) -> net, data(x, labels) -> its
# arrays, train_step(net, x, y), predict(net, x, batch). Built inside a worker.

class NnscratchRunner:
    name = "nnscratch"

    def __init__(self, threads, backend="numba"):
        import numba
        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits

        import nnscratch
        from nnscratch import zoo

        self.np, self.zoo = np, zoo
        nnscratch.set_backend(backend)
        self._limits = threadpool_limits(limits=threads, user_api="blas")  # kept alive: the limit holds
        numba.set_num_threads(threads)
        self.info = {"version": nnscratch.__version__, "backend": backend, "numba": numba.__version__,
                     "conv_algorithm": nnscratch.kernels.get_conv_algorithm(),
                     "numba_threads": numba.get_num_threads(), "numpy": np.__version__,
                     "threadpools": threadpool_info()}

    def build(self, model):
        builders = {"deep_cnn": self.zoo.deep_cnn, "simple_cnn": self.zoo.simple_cnn,
                    "mlp": lambda: self.zoo.basic_mlp(512)}
        return builders[model]()

    def data(self, x, labels):
        return x, self.np.eye(CLASSES, dtype=self.np.float32)[labels]

    def train_step(self, net, x, y):
        net.train_on_batch(x, y)

    def predict(self, net, x, batch):
        return net.predict(x, batch_size=batch)


def torch_model(torch, model):
    """The zoo's models as NCHW ``nn.Sequential`` (BN with Keras's eps and momentum), ending in logits."""
    nn = torch.nn

    def bn(cls, c):
        return cls(c, eps=1e-3, momentum=0.01)

    if model == "mlp":
        layers = [nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, CLASSES)]
    elif model == "simple_cnn":
        layers = [nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, CLASSES)]
    elif model == "deep_cnn":
        layers, c_in = [], 1
        for filters in (32, 64, 128):
            for _ in range(2):
                layers += [nn.Conv2d(c_in, filters, 3, padding=1), bn(nn.BatchNorm2d, filters), nn.ReLU()]
                c_in = filters
            layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
        layers += [nn.Flatten()]
        for n_in, units in ((1152, 512), (512, 256)):
            layers += [nn.Linear(n_in, units), nn.ReLU(), bn(nn.BatchNorm1d, units), nn.Dropout(0.5)]
        layers += [nn.Linear(256, CLASSES)]
    else:
        raise ValueError(f"unknown model {model!r}")
    return nn.Sequential(*layers)


class TorchRunner:
    name = "torch"

    def __init__(self, threads, backend=None):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        self.info = {"version": torch.__version__, "threads": torch.get_num_threads(),
                     "parallel_info": torch.__config__.parallel_info().splitlines()[:6]}

    def build(self, model):
        net = torch_model(self.torch, model)
        optimizer = self.torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)  # Keras's epsilon
        return net, optimizer, 1.0 if model == "deep_cnn" else None

    def data(self, x, labels):
        return (self.torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                self.torch.from_numpy(labels.astype("int64")))

    def train_step(self, net, x, y):
        model, optimizer, clipnorm = net
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(model(x), y)  # softmax + categorical CE, fused
        loss.backward()
        if clipnorm is not None:  # Keras clipnorm: each tensor by its own norm
            for p in model.parameters():
                self.torch.nn.utils.clip_grad_norm_(p, clipnorm)
        optimizer.step()
        loss.item()

    def predict(self, net, x, batch):
        model = net[0]
        model.eval()
        with self.torch.inference_mode():
            out = [self.torch.softmax(model(x[i:i + batch]), dim=1) for i in range(0, len(x), batch)]
        return self.torch.cat(out)


def keras_layers(keras, model):
    layers_ = keras.layers
    if model == "mlp":
        return [layers_.Flatten(), layers_.Dense(512, activation="relu"), layers_.Dense(CLASSES, activation="softmax")]
    if model == "simple_cnn":
        return [layers_.Conv2D(32, 3, activation="relu"), layers_.MaxPooling2D(2),
                layers_.Conv2D(64, 3, activation="relu"), layers_.MaxPooling2D(2),
                layers_.Conv2D(64, 3, activation="relu"), layers_.Flatten(),
                layers_.Dense(64, activation="relu"), layers_.Dense(CLASSES, activation="softmax")]
    if model == "deep_cnn":
        out = []
        for filters in (32, 64, 128):
            for _ in range(2):
                out += [layers_.Conv2D(filters, 3, padding="same"), layers_.BatchNormalization(),
                        layers_.Activation("relu")]
            out += [layers_.MaxPooling2D(2), layers_.Dropout(0.25)]
        out += [layers_.Flatten()]
        for units in (512, 256):
            out += [layers_.Dense(units, activation="relu"), layers_.BatchNormalization(), layers_.Dropout(0.5)]
        return out + [layers_.Dense(CLASSES, activation="softmax")]
    raise ValueError(f"unknown model {model!r}")


class KerasRunner:
    """Keras 3 on whatever backend it is configured with (KERAS_BACKEND or ~/.keras/keras.json)."""

    name = "keras"

    def __init__(self, threads, backend=None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)  # read when TensorFlow starts
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        import keras

        self.keras = keras
        kbackend = keras.backend.backend()
        if kbackend == "tensorflow":
            import tensorflow as tf
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # already initialised: the environment variables did it
                pass
        elif kbackend == "torch":
            import torch
            torch.set_num_threads(threads)
        self.info = {"version": keras.__version__, "backend": kbackend}  # jax: thread count not set

    def build(self, model):
        keras = self.keras
        net = keras.Sequential([keras.Input(IMAGE_SHAPE), *keras_layers(keras, model)])
        clip = {"clipnorm": 1.0} if model == "deep_cnn" else {}
        net.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, **clip),
                    loss="categorical_crossentropy", metrics=["accuracy"])
        return net

    def data(self, x, labels):
        import numpy as np
        return x, np.eye(CLASSES, dtype=np.float32)[labels]

    def train_step(self, net, x, y):
        net.train_on_batch(x, y)

    def predict(self, net, x, batch):
        return net.predict(x, batch_size=batch, verbose=0)


RUNNERS = {"nnscratch": NnscratchRunner, "torch": TorchRunner, "keras": KerasRunner}


# ------------------------------------------------------------ measurements
# These run inside a worker, on one runner.

def time_training(runner, net, batch, steps, warmup, min_seconds=0.0):
    """Images/s over at least ``steps`` timed steps (more until ``min_seconds``) after ``warmup`` steps."""
    x, labels = random_data(4 * batch, seed=1)
    batches = [runner.data(x[i:i + batch], labels[i:i + batch]) for i in range(0, len(x), batch)]
    for i in range(warmup):
        runner.train_step(net, *batches[i % len(batches)])
    done, t0 = 0, time.perf_counter()
    while done < steps or time.perf_counter() - t0 < min_seconds:
        runner.train_step(net, *batches[done % len(batches)])
        done += 1
    return done * batch / (time.perf_counter() - t0), done


def time_inference(runner, net, images=1000, batch=100, passes=5):
    """Images/s of ``predict`` on ``images`` images in batches of ``batch``: median of ``passes`` passes."""
    x, labels = random_data(images, seed=2)
    x = runner.data(x, labels)[0]
    runner.predict(net, x, batch)  # warm-up
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        runner.predict(net, x, batch)
        times.append(time.perf_counter() - t0)
    return images / statistics.median(times)


def memory_status():
    """Current and peak resident set size of this process in MiB (from /proc/self/status)."""
    values = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, kib = line.split()[:2]
                    values[key.rstrip(":")] = int(kib) / 1024
    except OSError:  # not Linux: ru_maxrss only
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        values = {"VmRSS": float("nan"), "VmHWM": peak}
    return values


def measure_memory(runner, model, batch, steps):
    """Peak RSS while training ``model``; call first thing in a fresh worker."""
    before = memory_status()["VmRSS"]
    net = runner.build(model)
    x, labels = random_data(batch, seed=3)
    data = runner.data(x, labels)
    for _ in range(steps):
        runner.train_step(net, *data)
    after = memory_status()
    return {"after_import_mib": before, "peak_mib": after["VmHWM"], "training_mib": after["VmHWM"] - before,
            "steps": steps}


def gemm_flops(layer, batch):
    """Multiply-adds of a Conv2D's or Dense's matmul for ``batch`` images x 2 (forward FLOPs), else 0."""
    kernel = getattr(layer, "params", {}).get("kernel")
    if kernel is None:
        return 0
    out_pixels = 1
    for d in layer.output_shape[1:-1]:  # Conv2D: H' x W'; Dense: nothing
        out_pixels *= d
    return 2 * batch * out_pixels * kernel.value.size


def gemm_peak(n=1024, repeat=10):
    """GFLOP/s of ``np.matmul`` of two n x n float32 matrices (median of ``repeat``)."""
    import numpy as np
    a, b = np.ones((n, n), np.float32), np.ones((n, n), np.float32)
    a @ b
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def layer_breakdown(model, x, y, steps=10, warmup=2):
    """Median ms of each layer's forward and backward, the loss and the optimizer, over ``steps`` steps.

    Runs what ``train_on_batch`` runs (forward with ``training=True``, the
    fused softmax cross-entropy, backward in reverse, with no input gradient
    for the lowest trainable layer, ``apply_gradients``), timing each call;
    ``train_on_batch`` adds input checks and the metrics.
    Like the model, it runs each BatchNormalization + ReLU pair as one fused
    step (``model.steps()``): the ReLU's row then reads 0 and its time is in
    the batch norm's row; and a MaxPooling2D after a ReLU-activated layer
    takes that ReLU's backward (``model.poolings_through_relu()``), whose time
    is then in the pooling's backward, not the layer's. A MaxPooling2D after a
    batch norm is computed in the batch norm's forward step
    (``model.batchnorm_poolings()``): its forward row reads 0.
    """
    layers = model.layers
    plan = model.steps()
    fused = model._fused_output()  # the trainer's own test: softmax layer + cross-entropy
    lowest = model._lowest_trainable_layer()
    through_relu = model.poolings_through_relu()
    times = collections.defaultdict(list)
    totals = []
    for step in range(warmup + steps):
        keep = step >= warmup
        lap = time.perf_counter()
        start = lap

        def record(key):
            nonlocal lap
            now = time.perf_counter()
            if keep:
                times[key].append(now - lap)
            lap = now

        h = x
        for index, h in model.forward_steps(x, training=True):  # the model's own plan and fusions
            record((layers[index].name, "forward"))
        if fused:
            _, grad = model.loss.fused(y, layers[-1].logits)
        else:
            grad = model.loss.gradient(y, h).astype(h.dtype, copy=False)
        record(("loss", "forward"))
        preactivation = fused  # the fused loss gives the last layer's dL/dz
        for i, _ in reversed(plan):
            if lowest is None or i < lowest:  # as Model.backward: nothing to compute below the lowest
                break
            layer = layers[i]
            layer.skip_input_gradient = i == lowest  # ... and no input gradient for it
            if preactivation:
                grad = layer.backward_from_preactivation(grad)
            else:
                grad = layer.backward(grad, relu=True) if i in through_relu else layer.backward(grad)
            preactivation = i in through_relu
            record((layer.name, "backward"))
        model.optimizer.apply_gradients(model.parameters())
        record(("optimizer", "step"))
        if keep:
            totals.append(time.perf_counter() - start)
    batch = len(x)
    rows = []
    fused_into = {index + 1 for index, fused_relu in plan if fused_relu}

    def median_ms(key):
        return 1e3 * statistics.median(times[key]) if times.get(key) else 0.0

    for i, layer in enumerate(layers):  # labelled by position: names depend on models built before
        label = f"{i + 1} {type(layer).__name__}" + (" (fused into the batch norm)" if i in fused_into else "")
        rows.append({"layer": label, "output": list(layer.output_shape[1:]),
                     "forward_ms": median_ms((layer.name, "forward")),
                     "backward_ms": median_ms((layer.name, "backward")),
                     "gemm_flops_per_image": 3 * gemm_flops(layer, 1)})  # forward + dW + dx
    rows.append({"layer": "loss (softmax CE)", "output": [], "forward_ms": 1e3 * statistics.median(
        times[("loss", "forward")]), "backward_ms": 0.0, "gemm_flops_per_image": 0})
    rows.append({"layer": "optimizer (Adam)", "output": [], "forward_ms": 1e3 * statistics.median(
        times[("optimizer", "step")]), "backward_ms": 0.0, "gemm_flops_per_image": 0})
    total_ms = sum(r["forward_ms"] + r["backward_ms"] for r in rows)
    for r in rows:
        r["ms"] = r["forward_ms"] + r["backward_ms"]
        r["percent"] = 100 * r["ms"] / total_ms
        r["gflops"] = r["gemm_flops_per_image"] * batch / (r["ms"] * 1e6) if r["gemm_flops_per_image"] else None
    flops = sum(r["gemm_flops_per_image"] for r in rows)
    step_ms = 1e3 * statistics.median(totals)
    return {"batch": batch, "steps": steps, "rows": rows, "sum_ms": total_ms, "step_ms": step_ms,
            "gemm_flops_per_image": flops, "gemm_gflops_achieved": flops * batch / (step_ms * 1e6)}


def handle_job(runner, nets, job):
    """Run one job in a worker and return its JSON-able result."""
    kind = job["job"]
    if kind == "throughput":
        if job["model"] not in nets:
            nets[job["model"]] = runner.build(job["model"])
        net = nets[job["model"]]
        train, steps = time_training(runner, net, job["batch"], job["steps"], job["warmup"], job["min_seconds"])
        infer = time_inference(runner, net, job["infer_images"], job["infer_batch"], job["infer_passes"])
        return {"train_img_s": train, "train_steps": steps, "infer_img_s": infer}
    if kind == "memory":
        return measure_memory(runner, job["model"], job["batch"], job["steps"])
    if kind == "layers":
        model = runner.build(job["model"])
        x, labels = random_data(job["batch"], seed=4)
        result = layer_breakdown(model, *runner.data(x, labels), steps=job["steps"])
        result["gemm_peak_gflops"] = gemm_peak()
        return result
    raise ValueError(f"unknown job {kind!r}")


def worker_main(framework, threads, backend):
    """Serve JSON-line jobs on stdin; answer on the original stdout (library prints go to stderr)."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj):
        channel.write(json.dumps(obj) + "\n")

    try:
        if framework == "nnscratch":
            import nnscratch  # noqa: F401  (before NumPy: it sets OpenBLAS's thread policy, read on import)
        runner = RUNNERS[framework](threads, backend)
    except Exception:
        send({"error": traceback.format_exc()})
        return
    send({"ready": True, "info": runner.info})
    nets = {}
    for line in sys.stdin:
        try:
            send(handle_job(runner, nets, json.loads(line)))
        except Exception:
            send({"error": traceback.format_exc()})


def first_step_main(framework, threads, backend, model="deep_cnn"):
    """Build ``model`` and run one training step; print wall-clock times (for the start-up measurement)."""
    t_start = time.time()
    runner = RUNNERS[framework](threads, backend)
    t_imported = time.time()
    net = runner.build(model)
    x, labels = random_data(64)
    data = runner.data(x, labels)
    t_built = time.time()
    runner.train_step(net, *data)
    print(json.dumps({"t_start": t_start, "t_imported": t_imported, "t_built": t_built, "t_end": time.time()}))


# ------------------------------------------------------------ orchestration

def worker_env(threads, extra=None):
    env = dict(os.environ, **(extra or {}))
    env["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))  # numba.set_num_threads may not exceed it
    return env


class Worker:
    """A framework's worker process: ``call(job)`` sends a job and returns its result."""

    def __init__(self, framework, threads, backend, env=None):
        self.framework = framework
        cmd = [sys.executable, "-u", os.path.abspath(__file__), "--worker", framework,
               "--threads", str(threads), "--backend", backend]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env or worker_env(threads))
        self.info = self._receive()["info"]

    def _receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.framework} worker died (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.framework} worker failed:\n{reply['error']}")
        return reply

    def call(self, **job):
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return self._receive()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_throughput(workers, models, rounds, batch=64, steps=20, warmup=3, min_seconds=1.0,
                   infer_images=1000, infer_batch=100, infer_passes=5, settle=1.0, log=print):
    """Alternate the frameworks, model by model, for ``rounds`` rounds; return per-round img/s.

    Before each job every worker has been idle for ``settle`` seconds: a framework's
    threads may spin on after its own job (Intel OpenMP, under PyTorch's MKL, for
    200 ms by default) and would take the cores from the next framework's timed steps.
    """
    names = list(workers)
    results = {m: {fw: {"train_rounds": [], "infer_rounds": [], "train_steps": []} for fw in names} for m in models}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
        for model in models:
            for fw in order:
                time.sleep(settle)
                out = workers[fw].call(job="throughput", model=model, batch=batch, steps=steps, warmup=warmup,
                                       min_seconds=min_seconds, infer_images=infer_images,
                                       infer_batch=infer_batch, infer_passes=infer_passes)
                cell = results[model][fw]
                cell["train_rounds"].append(out["train_img_s"])
                cell["infer_rounds"].append(out["infer_img_s"])
                cell["train_steps"].append(out["train_steps"])
                log(f"  round {r + 1}/{rounds} {model:10s} {fw:9s} train {out['train_img_s']:9.1f} img/s "
                    f"({out['train_steps']} steps)  infer {out['infer_img_s']:9.1f} img/s")
    for model in models:
        for cell in results[model].values():
            cell["train_img_s"] = statistics.median(cell["train_rounds"])
            cell["infer_img_s"] = statistics.median(cell["infer_rounds"])
            cell["status"] = "ok"
    return results


def ratios(throughput):
    """Per model: nnscratch / best other framework, for training and inference (None if no other)."""
    out = {}
    for model, cells in throughput.items():
        out[model] = {}
        for what in ("train", "infer"):
            key = f"{what}_img_s"
            others = {fw: c[key] for fw, c in cells.items() if fw != "nnscratch" and c.get("status") == "ok"}
            mine = cells.get("nnscratch", {}).get(key)
            best = max(others, key=others.get) if others else None
            out[model][what] = {"ratio": mine / others[best] if best and mine else None, "vs": best}
    return out


def measure_memory_all(frameworks, threads, backend, batch=64, steps=5, model="deep_cnn"):
    """Peak RSS of training ``model`` in a fresh worker per framework."""
    out = {}
    for fw in frameworks:
        with Worker(fw, threads, backend) as worker:
            out[fw] = worker.call(job="memory", model=model, batch=batch, steps=steps)
    return out


def measure_first_step(framework, threads, backend, env=None, model="deep_cnn"):
    """Seconds from spawning a fresh process to the end of its first training step (batch 64)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--first-step", framework,
           "--threads", str(threads), "--backend", backend, "--models", model]
    t_spawn = time.time()
    out = subprocess.run(cmd, env=env or worker_env(threads), capture_output=True, text=True, check=True).stdout
    t = json.loads(out.strip().splitlines()[-1])
    return {"first_step_s": t["t_end"] - t_spawn, "interpreter_s": t["t_start"] - t_spawn,
            "import_s": t["t_imported"] - t["t_start"], "build_s": t["t_built"] - t["t_imported"],
            "step_s": t["t_end"] - t["t_built"]}


def measure_startup_all(frameworks, threads, backend, model="deep_cnn"):
    """nnscratch: a process with an empty Numba cache, then a second one using that cache; others twice."""
    out = {}
    for fw in frameworks:
        with tempfile.TemporaryDirectory() as cache_dir:
            env = worker_env(threads, {"NUMBA_CACHE_DIR": cache_dir})
            labels = ("first process (empty Numba cache)", "second process (cached)") if fw == "nnscratch" \
                else ("first process", "second process")
            out[fw] = [dict(measure_first_step(fw, threads, backend, env, model), process=label)
                       for label in labels]
    return out


def machine_info():
    """CPU, cores, load, versions, git commit (read-only), BLAS as threadpoolctl sees it here."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        cpu = fields.get("model name", cpu)
        if "cpu family" in fields and "model" in fields:   # "AMD EPYC" names Zen 1 to 5 alike
            cpu += f" (family {fields['cpu family']} model {fields['model']})"
    except OSError:
        pass
    versions = {}
    for package in ("numpy", "numba", "torch", "keras", "tensorflow", "jax", "threadpoolctl"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
        commit += " (+ uncommitted changes)" if dirty else ""
    except OSError:
        commit = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions,
            "commit": commit, "load_before": [round(v, 2) for v in os.getloadavg()],
            "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ}}


def goals(results):
    """The issue's goals: (goal, measured text, met True/False/None)."""
    rows = []
    r = results.get("ratios", {})
    for model in MODELS:
        if model in r:
            rows.append((f"train {model} >= {GOALS[model]}x", r[model]["train"]["ratio"], GOALS[model]))
    for model in MODELS:
        if model in r:
            rows.append((f"inference {model} >= {GOALS['inference']}x", r[model]["infer"]["ratio"],
                         GOALS["inference"]))
    out = [{"goal": g, "measured": None if v is None else f"{v:.2f}x", "met": None if v is None else v >= t}
           for g, v, t in rows]
    mem = results.get("memory", {})
    if "nnscratch" in mem and "torch" in mem:
        a, b = mem["nnscratch"]["peak_mib"], mem["torch"]["peak_mib"]
        out.append({"goal": "peak memory training deep_cnn <= PyTorch's", "measured": f"{a:.0f} vs {b:.0f} MiB",
                    "met": a <= b})
    start = results.get("startup", {}).get("nnscratch")
    if start:
        s = start[-1]["first_step_s"]
        out.append({"goal": f"first training step in a second process < {GOALS['startup_s']:.0f} s",
                    "measured": f"{s:.2f} s", "met": s < GOALS["startup_s"]})
    return out


# ------------------------------------------------------------ reporting

def _fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def _cell(cell, what):
    """Median img/s, with the range over rounds when there were several."""
    if cell.get("status") != "ok":
        return cell.get("status", "n/a")
    text, rounds = _fmt(cell[f"{what}_img_s"]), cell.get(f"{what}_rounds", [])
    return f"{text} ({_fmt(min(rounds))}-{_fmt(max(rounds))})" if len(rounds) > 1 else text


def blas_kernels(results):
    """The run line's BLAS sentence: the nnscratch worker's BLAS libraries and the kernels OpenBLAS chose."""
    pools = results.get("workers", {}).get("nnscratch", {}).get("threadpools") or []
    blas = [f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} ({os.path.basename(p['filepath'])})"
            for p in pools if p.get("user_api") == "blas"]
    return f" nnscratch's BLAS: {'; '.join(blas)}." if blas else ""


def render_markdown(results):
    """The figures as markdown: throughput, goals, memory, start-up, per-layer breakdown."""
    cfg, machine = results["config"], results["machine"]
    fws = cfg["frameworks"]
    lines = [f"Run: {machine['cpu']}, {machine['cores']} cores, {cfg['threads']} threads, nnscratch backend "
             f"`{cfg['backend']}`, batch {cfg['batch']}, {cfg['rounds']} rounds (median), >= {cfg['steps']} timed "
             f"steps after {cfg['warmup']} warm-up and {cfg.get('settle', 0):g} s idle, inference the median of "
             f"{cfg.get('infer_passes', 5)} passes, commit {machine['commit']}, "
             f"load before {machine['load_before'][0]:.2f}, environment {machine.get('env') or '{}'}. "
             f"Versions: " + ", ".join(
                 f"{k} {v}" for k, v in machine["versions"].items() if v) + "." + blas_kernels(results), ""]
    tp, ra = results["throughput"], results["ratios"]
    header = (["model"] + [f"{fw} train" for fw in fws] + ["train ratio"]
              + [f"{fw} infer" for fw in fws] + ["infer ratio"])
    lines += ["Images/s (higher is better), median over rounds (lowest-highest round); "
              "ratio = nnscratch / fastest other framework, of the medians.", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in tp:
        row = [model]
        for what in ("train", "infer"):
            for fw in fws:
                c = tp[model].get(fw, {})
                row.append(_cell(c, what))
            q = ra[model][what]
            row.append(f"{q['ratio']:.2f}x vs {q['vs']}" if q["ratio"] else "n/a")
        lines.append("| " + " | ".join(row) + " |")
    if results.get("goals"):
        lines += ["", "| goal | measured | met |", "|---|---|---|"]
        for g in results["goals"]:
            met = "n/a" if g["met"] is None else ("yes" if g["met"] else "**no**")
            lines.append(f"| {g['goal']} | {g['measured'] or 'n/a'} | {met} |")
    if results.get("memory"):
        lines += ["", f"Peak resident memory (VmHWM) training deep_cnn at batch {cfg['batch']}, fresh process "
                      "per framework:", "", "| framework | after import, MiB | peak, MiB | peak - after import, MiB |",
                  "|---|---|---|---|"]
        for fw, m in results["memory"].items():
            lines.append(f"| {fw} | {m['after_import_mib']:.0f} | {m['peak_mib']:.0f} | {m['training_mib']:.0f} |")
    if results.get("startup"):
        lines += ["", "Fresh process to the end of its first deep_cnn training step (batch 64):", "",
                  "| framework | process | total s | interpreter s | import s | build s | first step s |",
                  "|---|---|---|---|---|---|---|"]
        for fw, runs in results["startup"].items():
            for s in runs:
                lines.append(f"| {fw} | {s['process']} | {s['first_step_s']:.2f} | {s['interpreter_s']:.2f} | "
                             f"{s['import_s']:.2f} | {s['build_s']:.2f} | {s['step_s']:.2f} |")
    lb = results.get("layers")
    if lb:
        lines += ["", f"One nnscratch deep_cnn training step at batch {lb['batch']}, per layer (median of "
                      f"{lb['steps']} steps). GEMM = FLOPs of the layer's matmuls (forward, dW, dx).", "",
                  "| layer | output | forward ms | backward ms | total ms | % | GEMM MFLOP/image | GFLOP/s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in lb["rows"]:
            lines.append(f"| {r['layer']} | {'x'.join(map(str, r['output']))} | {r['forward_ms']:.2f} | "
                         f"{r['backward_ms']:.2f} | {r['ms']:.2f} | {r['percent']:.1f} | "
                         f"{_fmt(r['gemm_flops_per_image'] / 1e6 or None, 1)} | {_fmt(r['gflops'], 1)} |")
        lines += [f"| **sum of parts** | | | | {lb['sum_ms']:.1f} | 100 | {lb['gemm_flops_per_image'] / 1e6:.1f} | "
                  f"{lb['gemm_flops_per_image'] * lb['batch'] / (lb['sum_ms'] * 1e6):.1f} |", "",
                  f"Median whole step {lb['step_ms']:.1f} ms = {lb['gemm_gflops_achieved']:.1f} GFLOP/s of GEMM "
                  f"work, against `np.matmul` 1024x1024 float32 at {lb['gemm_peak_gflops']:.0f} GFLOP/s "
                  f"({100 * lb['gemm_gflops_achieved'] / lb['gemm_peak_gflops']:.0f}% of it); at that peak the "
                  f"step's matmuls alone would take "
                  f"{lb['gemm_flops_per_image'] * lb['batch'] / (lb['gemm_peak_gflops'] * 1e6):.1f} ms."]
    return "\n".join(lines) + "\n"


def update_doc(path, markdown, backend="numba"):
    """Replace the text between the DOC_BEGIN and DOC_END markers (for ``backend``) of ``path``."""
    begin, end = DOC_BEGIN.format(backend=backend), DOC_END.format(backend=backend)
    with open(path) as f:
        text = f.read()
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise SystemExit(f"{path} lacks the markers {begin!r} ... {end!r}")
    with open(path, "w") as f:
        f.write(f"{head}{begin}\n{markdown}{end}{tail}")


def print_summary(results):
    tp, ra = results["throughput"], results["ratios"]
    print(f"\n{'model':11s} {'framework':10s} {'train img/s':>12s} {'infer img/s':>12s}   (median of rounds)")
    for model, cells in tp.items():
        for fw, c in cells.items():
            if c.get("status") == "ok":
                print(f"{model:11s} {fw:10s} {c['train_img_s']:12.1f} {c['infer_img_s']:12.1f}")
            else:
                print(f"{model:11s} {fw:10s} {c['status']:>12s}")
        for what in ("train", "infer"):
            q = ra[model][what]
            if q["ratio"]:
                print(f"{'':11s} nnscratch / {q['vs']} {what}: {q['ratio']:.2f}x")
    for g in results.get("goals", []):
        print(f"goal: {g['goal']:52s} {g['measured'] or 'n/a':>20s}  "
              f"{'n/a' if g['met'] is None else ('met' if g['met'] else 'NOT met')}")


def run_benchmark(args, log=print):
    """Everything ``main`` measures, as one JSON-able dict."""
    requested = [fw.strip() for fw in args.frameworks.split(",") if fw.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name, allowed in ((requested, FRAMEWORKS), (models, MODELS)):
        bad = [v for v in name if v not in allowed]
        if bad:
            raise SystemExit(f"unknown {bad}; choose from {allowed}")
    if args.infer_passes < 1:
        raise SystemExit(f"--infer-passes must be at least 1, got {args.infer_passes}")
    present = [fw for fw in requested if framework_available(fw)]
    missing = [fw for fw in requested if fw not in present]
    results = {"machine": machine_info(), "config": {
        "threads": args.threads, "backend": args.backend, "rounds": args.rounds, "steps": args.steps,
        "warmup": args.warmup, "batch": args.batch, "min_seconds": args.min_seconds, "settle": args.settle,
        "infer_passes": args.infer_passes,
        "models": models,
        "frameworks": requested, "missing": missing}}
    log(f"frameworks: {present}" + (f"; not installed: {missing}" if missing else ""))
    workers = {}
    try:
        for fw in present:
            workers[fw] = Worker(fw, args.threads, args.backend)
        results["workers"] = {fw: w.info for fw, w in workers.items()}
        throughput = run_throughput(workers, models, args.rounds, batch=args.batch, steps=args.steps,
                                    warmup=args.warmup, min_seconds=args.min_seconds, settle=args.settle,
                                    infer_passes=args.infer_passes, log=log)
        if not args.no_layers and "nnscratch" in workers:
            log("per-layer breakdown of the nnscratch deep_cnn step ...")
            results["layers"] = workers["nnscratch"].call(job="layers", model="deep_cnn", batch=args.batch,
                                                          steps=args.layer_steps)
    finally:
        for w in workers.values():
            w.close()
    for model in models:
        for fw in missing:
            throughput[model][fw] = {"status": "not installed"}
    results["throughput"] = throughput
    results["ratios"] = ratios(throughput)
    if not args.no_memory:
        log("peak memory, fresh process per framework ...")
        results["memory"] = measure_memory_all(present, args.threads, args.backend, batch=args.batch)
    if not args.no_startup:
        log("start-up to first training step, fresh processes ...")
        results["startup"] = measure_startup_all(present, args.threads, args.backend)
    results["machine"]["load_after"] = [round(v, 2) for v in os.getloadavg()]
    results["goals"] = goals(results)
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round (at least)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before the timed ones")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="keep timing steps until this long has passed (fast models)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds all workers idle before each timed job (threads that spin after work stop)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--infer-passes", type=int, default=5,
                        help="timed predict passes per round, their median counted (5 in runs up to 42)")
    parser.add_argument("--layer-steps", type=int, default=10)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--backend", default="numba", choices=["numba", "numpy"])
    parser.add_argument("--json", metavar="PATH", help="write all results to PATH")
    parser.add_argument("--from-json", metavar="PATH", help="measure nothing: report the results saved in PATH")
    parser.add_argument("--markdown", action="store_true", help="print the figures as markdown tables")
    parser.add_argument("--update-doc", metavar="PATH", help="replace the generated block of PATH (markers)")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--no-layers", action="store_true")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--first-step", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.threads, args.backend)
    if args.first_step:
        return first_step_main(args.first_step, args.threads, args.backend, args.models)
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
    else:
        m = machine_info()
        print(f"{m['cpu']}, {m['cores']} cores, python {m['python']}, load {m['load_before']}, commit {m['commit']}")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v))
        results = run_benchmark(args)
        for fw, info in results["workers"].items():
            print(f"{fw}: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "threadpools"))
            for pool in info.get("threadpools", []):
                print(f"  threadpool {pool.get('internal_api')} {pool.get('version')} "
                      f"{pool.get('architecture', '')} threads={pool.get('num_threads')} ({pool.get('filepath')})")
    print_summary(results)
    markdown = render_markdown(results)
    if args.markdown:
        print("\n" + markdown)
    if args.update_doc:
        update_doc(args.update_doc, markdown, results["config"]["backend"])
    if args.json and not args.from_json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
