"""Build the shipped 4×4 MNIST features of the quantum-hypernetwork problems.

Pixels /255 (float32), then ``tf.image.resize(img[..., None], (4, 4))`` with TensorFlow's defaults
(bilinear, ``antialias=False``, half-pixel centres), flattened row-major to 16 features. The resizer
matters: PIL, skimage or cv2 (antialiased) give different features and so a different cost landscape,
which is why this script uses TensorFlow itself and the app only ships its output (the web process and
the tests never import TensorFlow).

Note: for 28 → 4 (scale 7) TF's half-pixel bilinear sampling lands exactly on source pixel centres
(src = (dst + 0.5)·7 − 0.5 = 3, 10, 17, 24), so the features equal ``img[3::7, 3::7] / 255`` bit for bit
(a point sample, no averaging). The tests check that NumPy identity instead of importing TensorFlow.

Usage: python scripts/make_mnist4x4.py [path/to/mnist.npz] [--out qmlapp/datasets/files/mnist4x4.npz]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = Path("/work/shared/data/mnist.npz")
DEFAULT_OUT = ROOT / "qmlapp" / "datasets" / "files" / "mnist4x4.npz"
BATCH = 10_000


def resize_4x4(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 → (N, 16) float32: /255, TF bilinear resize to 4×4 (defaults), row-major flatten."""
    import tensorflow as tf

    out = np.empty((len(images), 16), dtype=np.float32)
    for start in range(0, len(images), BATCH):
        batch = images[start:start + BATCH].astype(np.float32) / 255.0
        small = tf.image.resize(batch[..., None], (4, 4))  # method="bilinear", antialias=False
        out[start:start + BATCH] = small.numpy().reshape(len(batch), 16)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC, help="MNIST npz (Keras layout, uint8)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    with np.load(args.src) as raw:
        x_train, y_train = raw["x_train"], raw["y_train"].astype(np.uint8)
        x_test, y_test = raw["x_test"], raw["y_test"].astype(np.uint8)
    meta = np.array([
        f"source: {args.src.name} (MNIST, LeCun/Cortes/Burges; 60000 train + 10000 test images, uint8 28x28)",
        "features: x/255 as float32, then tf.image.resize(x[..., None], (4, 4)) with TF defaults "
        "(method=bilinear, antialias=False, half-pixel centers), flattened row-major to 16 features",
        f"tensorflow: {tf.__version__}",
        "labels: original digits 0-9 (uint8)",
        "identity: for 28->4 the half-pixel bilinear samples hit pixel centres, so features == img[3::7, 3::7]/255",
    ])
    f_train, f_test = resize_4x4(x_train), resize_4x4(x_test)
    point_sample = np.array_equal(f_train, (x_train[:, 3::7, 3::7].astype(np.float32) / 255.0).reshape(-1, 16))
    print(f"features == img[3::7, 3::7]/255 (point sample): {point_sample}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x_train=f_train, y_train=y_train, x_test=f_test, y_test=y_test, meta=meta)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.2f} MB): x_train {f_train.shape} {f_train.dtype}, "
          f"x_test {f_test.shape}, range [{f_train.min():.3f}, {f_train.max():.3f}]")


if __name__ == "__main__":
    main()
