"""Bit layouts of quantum-hypernetwork problems: which bits of a bitstring are which BNN parameters.

A bitstring b ∈ {0,1}ⁿ is one binary neural network. Bit p (0-indexed, most significant first, as in
the authors' cost vectors) is layout parameter p; spins are s = 2b − 1. The integer index of a
bitstring is Σ_p b_p 2^(n−1−p), so a cost vector ``C[index]`` lists networks in that order.

Which *qubit* carries parameter p is a separate, explicit choice (:func:`qubit_of_bit`): the app puts
parameter p on qubit p (Cirq's big-endian state index then equals the layout index); the authors' Julia
code put it on qubit n−1−p, which reverses the brickwork line relative to the layout.

Pure Python/NumPy: the web process imports this to show layouts and decode bitstrings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_BITS = 22  # exhaustive enumeration of C for all 2^n networks and exact state vectors stay cheap
QUBIT_ORDERS = ("app", "authors")

ROLE_TEXT = {
    "weight": "±1 weight (bit 1 → +1, bit 0 → −1, unless weight-encoding bits say otherwise)",
    "bias": "±1 bias (bit 1 → +1, bit 0 → −1)",
    "activation": "hidden activation: bit 1 → logistic sigmoid, bit 0 → ReLU",
    "encoding": "weight encoding e (MSB first): a weight bit 0 means −e (0, −1, −2, −3); bit 1 means +1",
    "width": "hidden width: bit 1 → all hidden units, bit 0 → only the first half (rest switched off)",
}


@dataclass(frozen=True)
class BitField:
    name: str
    start: int
    length: int
    role: str  # weight | bias | activation | encoding | width
    shape: tuple[int, ...]
    description: str

    @property
    def stop(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class BitLayout:
    """One BNN family: data, architecture and the meaning of every bit."""

    problem: str
    dataset: str  # gaussian2d | moons | blobs | mnist01 | mnist37
    n_inputs: int
    hidden: int  # 0: logistic regression (no hidden layer)
    loss: str  # mse (against {0,1} labels, the Gaussian notebook) | bce (MNIST)
    fields: tuple[BitField, ...]
    default_activation: str = "sigmoid"  # used when no bit chooses it
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_bits(self) -> int:
        return sum(f.length for f in self.fields)

    def field(self, name: str) -> BitField | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def encoding_bits(self) -> int:
        f = self.field("encoding")
        return f.length if f else 0

    def table(self) -> list[dict[str, Any]]:
        """Rows for display: field, bit range, shape and meaning."""
        return [{"field": f.name, "bits": f"{f.start}" if f.length == 1 else f"{f.start}–{f.stop - 1}",
                 "count": f.length, "shape": "×".join(map(str, f.shape)) or "scalar",
                 "meaning": f.description} for f in self.fields]

    def decode(self, bits: Any) -> dict[str, Any]:
        """The network a bitstring stands for: real-valued weights, activation, width, encoding."""
        b = as_bits(bits, self.n_bits)
        s = 2 * b.astype(np.int64) - 1
        enc_f = self.field("encoding")
        e = int("".join(map(str, b[enc_f.start:enc_f.stop])), 2) if enc_f else None
        out: dict[str, Any] = {"bitstring": bits_to_str(b), "index": bits_to_index(b)}
        for f in self.fields:
            if f.role == "weight":
                vals = s[f.start:f.stop].astype(float)
                if e is not None:
                    vals = np.where(b[f.start:f.stop] == 1, 1.0, float(-e))  # float(-0) = 0.0, not -0.0
                out[f.name] = vals.reshape(f.shape)
            elif f.role == "bias":
                out[f.name] = s[f.start:f.stop].astype(float).reshape(f.shape)
        act_f = self.field("activation")
        out["activation"] = ("sigmoid" if b[act_f.start] == 1 else "relu") if act_f else self.default_activation
        width_f = self.field("width")
        active = self.hidden
        if width_f is not None and b[width_f.start] == 0:
            active = max(1, self.hidden // 2)
        out["active_hidden"] = active
        out["encoding"] = e
        return out

    def encode(self, network: dict[str, Any]) -> np.ndarray:
        """The bitstring (uint8 array, layout order) of a decoded network: the inverse of :meth:`decode`.

        Needs every weight/bias field; ``activation``, ``active_hidden`` and ``encoding`` are needed only when
        a bit chooses them (otherwise they are checked if given). A weight value 1 is bit 1; without encoding
        bits −1 is bit 0, with them −e is bit 0 for the network's e (so e = 1 makes them ±1 and e = 0 makes
        bit 0 a zero weight). ``bitstring``/``index`` keys are ignored. Raises ValueError if not encodable.
        """
        n = self.n_bits
        b = np.zeros(n, dtype=np.uint8)
        enc_f = self.field("encoding")
        e: int | None = None
        if enc_f is not None:
            raw = network.get("encoding")
            if raw is None or isinstance(raw, bool) or int(raw) != raw or not 0 <= int(raw) < 2**enc_f.length:
                raise ValueError(f"encoding must be an integer in [0, {2**enc_f.length}), got {raw!r}")
            e = int(raw)
            b[enc_f.start:enc_f.stop] = [(e >> (enc_f.length - 1 - k)) & 1 for k in range(enc_f.length)]
        elif network.get("encoding") is not None:
            raise ValueError("this layout has no encoding bits; 'encoding' must be None")
        low = -1.0 if e is None else -float(e)
        for f in self.fields:
            if f.role not in ("weight", "bias"):
                continue
            if f.name not in network:
                raise ValueError(f"network lacks field {f.name!r}")
            vals = np.asarray(network[f.name], dtype=float)
            if vals.shape != f.shape:
                raise ValueError(f"field {f.name!r} must have shape {f.shape}, got {vals.shape}")
            vals = vals.ravel()
            zero = -1.0 if f.role == "bias" else low
            ones, zeros = vals == 1.0, vals == zero
            if not np.all(ones | zeros):
                allowed = "±1" if zero == -1.0 else f"1 or {zero:g}"
                raise ValueError(f"field {f.name!r} has values not encodable as {allowed}: {vals[~(ones | zeros)]}")
            b[f.start:f.stop] = ones
        act = network.get("activation")
        act_f = self.field("activation")
        if act_f is not None:
            if act not in ("sigmoid", "relu"):
                raise ValueError(f"activation must be 'sigmoid' or 'relu', got {act!r}")
            b[act_f.start] = act == "sigmoid"
        elif act is not None and self.hidden > 0 and act != self.default_activation:
            raise ValueError(f"this layout has no activation bit; activation is {self.default_activation!r}")
        active = network.get("active_hidden")
        width_f = self.field("width")
        half = max(1, self.hidden // 2)
        if width_f is not None:
            if active not in (self.hidden, half):
                raise ValueError(f"active_hidden must be {self.hidden} or {half}, got {active!r}")
            b[width_f.start] = active == self.hidden
        elif active is not None and active != self.hidden:
            raise ValueError(f"this layout has no width bit; active_hidden must be {self.hidden}, got {active!r}")
        return b


def as_bits(bits: Any, n: int) -> np.ndarray:
    """Accept a '0101…' string, a sequence of 0/1 or an integer index; return a uint8 array of length n."""
    if isinstance(bits, str):
        text = bits.strip().replace(" ", "")
        if len(text) != n or set(text) - {"0", "1"}:
            raise ValueError(f"bitstring must be {n} characters of 0/1, got {bits!r}")
        return np.frombuffer(text.encode(), dtype=np.uint8) - ord("0")
    if isinstance(bits, (int, np.integer)):
        if not 0 <= int(bits) < 2**n:
            raise ValueError(f"bitstring index must be in [0, 2^{n}), got {bits}")
        return index_to_bits(int(bits), n)
    arr = np.asarray(bits, dtype=np.int64).ravel()
    if arr.size != n or np.any((arr != 0) & (arr != 1)):
        raise ValueError(f"bitstring must have {n} entries of 0/1")
    return arr.astype(np.uint8)


def bits_to_index(bits: np.ndarray) -> int:
    return int("".join(map(str, np.asarray(bits, dtype=np.int64))), 2) if len(bits) else 0


def index_to_bits(index: int, n: int) -> np.ndarray:
    return np.array([(index >> (n - 1 - p)) & 1 for p in range(n)], dtype=np.uint8)


def bits_to_str(bits: np.ndarray) -> str:
    return "".join(map(str, np.asarray(bits, dtype=np.int64)))


def all_bits(n: int) -> np.ndarray:
    """(2^n, n) uint8 matrix of every bitstring, row i = bitstring with index i (MSB first)."""
    idx = np.arange(2**n, dtype=np.int64)
    return ((idx[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.uint8)


def qubit_of_bit(p: int, n: int, order: str = "app") -> int:
    """The qubit (0 … n−1 on the line) that carries layout bit p."""
    if order == "app":
        return p
    if order == "authors":
        return n - 1 - p
    raise ValueError(f"qubit order must be one of {QUBIT_ORDERS}, got {order!r}")


def to_qubit_order(values: np.ndarray, n: int, order: str = "app") -> np.ndarray:
    """Re-index a per-bitstring vector (layout order) by the state-vector index of the chosen qubit map.

    With Cirq's big-endian convention qubit 0 is the most significant bit of the state index, so the
    app order is the identity and the authors' order is a bit reversal of the index.
    """
    if order == "app":
        return values
    perm = bit_reverse_permutation(n)
    return values[perm]


def bit_reverse_permutation(n: int) -> np.ndarray:
    idx = np.arange(2**n, dtype=np.int64)
    rev = np.zeros_like(idx)
    for p in range(n):
        rev |= ((idx >> p) & 1) << (n - 1 - p)
    return rev


# --- the problems -------------------------------------------------------------------------------


def _mlp_fields(n_in: int, hidden: int, *, activation_bit: bool, encoding_bits: int,
                width_bit: bool) -> tuple[BitField, ...]:
    fields: list[BitField] = []
    pos = 0

    def add(name: str, length: int, role: str, shape: tuple[int, ...], desc: str) -> None:
        nonlocal pos
        fields.append(BitField(name, pos, length, role, shape, desc))
        pos += length

    if hidden == 0:
        add("w", n_in, "weight", (n_in,), f"input weights ({n_in}), " + ROLE_TEXT["weight"])
        add("b", 1, "bias", (), "output bias, " + ROLE_TEXT["bias"])
    else:
        add("W1", n_in * hidden, "weight", (n_in, hidden),
            f"input→hidden weights, {n_in}×{hidden} row-major (W1[i,h] = s[{hidden}i+h])")
        add("W2", hidden, "weight", (hidden,), f"hidden→output weights ({hidden})")
        add("b2", 1, "bias", (), "output bias")
        add("b1", hidden, "bias", (hidden,), f"hidden biases ({hidden})")
        if activation_bit:
            add("activation", 1, "activation", (), ROLE_TEXT["activation"])
    if encoding_bits:
        add("encoding", encoding_bits, "encoding", (encoding_bits,), ROLE_TEXT["encoding"])
    if width_bit:
        add("width", 1, "width", (), ROLE_TEXT["width"])
    return tuple(fields)


DATASET_INPUTS = {"gaussian2d": 2, "moons": 2, "blobs": 2, "mnist01": 16, "mnist37": 16}
CUSTOM_DATASETS = tuple(DATASET_INPUTS)
PROBLEMS = ("gaussian2d", "mnist01", "mnist37_encoding", "custom")


def make_layout(problem: str, *, dataset: str = "gaussian2d", hidden: int = 2, activation_bit: bool = False,
                encoding_bits: int = 0, width_bit: bool = False) -> BitLayout:
    """The layout of a named problem; the ``custom`` keyword arguments apply to ``custom`` only."""
    if problem == "gaussian2d":
        fields = _mlp_fields(2, 4, activation_bit=True, encoding_bits=0, width_bit=False)
        return BitLayout("gaussian2d", "gaussian2d", 2, 4, "mse", fields, notes=(
            "2 inputs → 4 hidden → 1 sigmoid output; C = mean (ŷ − y)² over 10,000 training points "
            "(training loss: the paper trains and evaluates on the same points).",))
    if problem == "mnist01":
        fields = _mlp_fields(16, 0, activation_bit=False, encoding_bits=0, width_bit=False)
        return BitLayout("mnist01", "mnist01", 16, 0, "bce", fields, notes=(
            "Logistic regression ŷ = sigmoid(x·w + b) on 4×4 MNIST (tf.image.resize, bilinear), digits 0 vs 1; "
            "C = mean binary cross-entropy over the training images.",))
    if problem == "mnist37_encoding":
        fields = _mlp_fields(16, 0, activation_bit=False, encoding_bits=2, width_bit=False)
        return BitLayout("mnist37_encoding", "mnist37", 16, 0, "bce", fields, notes=(
            "Logistic regression on 4×4 MNIST, 3 vs 7 (label 1 = digit 7), with 2 bits choosing the weight "
            "encoding. The bias stays ±1 (our choice: the public notebook is ambiguous about it).",))
    if problem == "custom":
        if dataset not in DATASET_INPUTS:
            raise ValueError(f"custom dataset must be one of {CUSTOM_DATASETS}, got {dataset!r}")
        n_in = DATASET_INPUTS[dataset]
        fields = _mlp_fields(n_in, hidden, activation_bit=activation_bit and hidden > 0,
                             encoding_bits=encoding_bits, width_bit=width_bit and hidden >= 2)
        loss = "bce" if dataset.startswith("mnist") else "mse"
        arch = f"{n_in} inputs → {hidden} hidden → 1" if hidden else f"logistic regression on {n_in} inputs"
        return BitLayout("custom", dataset, n_in, hidden, loss, fields, notes=(f"Custom: {arch} on {dataset}.",))
    raise ValueError(f"problem must be one of {PROBLEMS}, got {problem!r}")
