"""Reads an HDF5 checkpoint written by ctune (tests/test_hdf5 writes one and runs this script
on it) with h5py, and checks names, stored types, dtype attributes and values against values
recomputed here, independently of ctune: element i of the k-th floating tensor is
sin(0.37 i + k) * 2.5, the i32 tensor holds (7919 i mod 1000) - 500, the i8 tensor
(37 i mod 255) - 127 with per-row scales 0.01 (r + 1), and the blob's byte i is (31 i + 7) mod 256.

    python3 tests/reference/check_hdf5_checkpoint.py FILE.h5

Exit status: 0 when everything matches, 1 on a mismatch (printed), 77 when h5py is missing.
"""
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    print("check_hdf5_checkpoint: h5py or numpy not installed; skipped")
    sys.exit(77)

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def formula(shape, k):
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return (np.sin(0.37 * i + k) * 2.5).reshape(shape)


def rel_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def text(value):
    # Fixed-length string attributes come back as bytes.
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def check_tensor(f, path, stored_dtype, label, shape):
    d = f[path]
    check(d.dtype == np.dtype(stored_dtype), f"{path}: stored as {d.dtype}, expected {stored_dtype}")
    check(text(d.attrs["dtype"]) == label, f"{path}: dtype attribute {text(d.attrs['dtype'])!r}, expected {label!r}")
    check(text(d.attrs["kind"]) == "tensor", f"{path}: kind attribute {text(d.attrs['kind'])!r}")
    check(d.shape == shape, f"{path}: shape {d.shape}, expected {shape}")
    check(d.fletcher32, f"{path}: no Fletcher32 checksum")
    return d[()]


def main(path):
    with h5py.File(path, "r") as f:
        check(text(f.attrs["format"]) == "ctune", f"format attribute {f.attrs['format']!r}")
        check(int(f.attrs["format_version"]) == 1, "format_version")
        names = sorted(f["model"].keys())
        check(names == ["model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                        "model.layers.0.self_attn.q_proj.weight", "token_ids"], f"/model holds {names}")

        q = check_tensor(f, "model/model.layers.0.self_attn.q_proj.weight", "<f4", "float32", (7, 5))
        err = rel_error(q, formula((7, 5), 0))
        check(err < 1e-7, f"f32 values: relative error {err:.3g}")

        raw = check_tensor(f, "model/model.layers.0.self_attn.k_proj.weight", "<u2", "bfloat16", (7, 5))
        bf16 = (raw.astype(np.uint32) << 16).view(np.float32)
        err = rel_error(bf16, formula((7, 5), 1))
        check(err < 2.0 ** -8, f"bf16 values: relative error {err:.3g}")

        raw = check_tensor(f, "model/model.layers.0.mlp.up_proj.weight", "<u2", "float16", (3, 4, 5))
        err = rel_error(raw.view(np.float16), formula((3, 4, 5), 2))
        check(err < 2.0 ** -10, f"f16 values: relative error {err:.3g}")

        m = check_tensor(f, "optimizer/m/model.layers.0.mlp.up_proj.weight", "<f8", "float64", (3, 4, 5))
        err = rel_error(m, formula((3, 4, 5), 3))
        check(err < 1e-15, f"f64 values: relative error {err:.3g}")

        ids = check_tensor(f, "model/token_ids", "<i4", "int32", (7, 5))
        i = np.arange(35)
        check(np.array_equal(ids.ravel(), (i * 7919 % 1000) - 500), "i32 values")

        q8 = check_tensor(f, "int8/model.layers.0.mlp.down_proj.weight", "|i1", "int8", (6, 9))
        i = np.arange(54)
        check(np.array_equal(q8.ravel(), (i * 37 % 255) - 127), "i8 values")
        check(int(f["int8/model.layers.0.mlp.down_proj.weight"].attrs["scale_block"]) == 0, "scale_block")
        scale = f["int8/model.layers.0.mlp.down_proj.weight_scale"]
        check(text(scale.attrs["kind"]) == "scale" and scale.shape == (6, 1), "scale dataset kind/shape")
        err = rel_error(scale[()].ravel(), 0.01 * (np.arange(6) + 1))
        check(err < 1e-7, f"i8 scales: relative error {err:.3g}")

        state = f["state"]
        check(int(state.attrs["step"]) == 4242, f"step {state.attrs['step']}")
        check(float(state.attrs["lr"]) == 0.000125, f"lr {state.attrs['lr']!r}")
        check(text(state.attrs["recipe"]) == "model:\n  name: 小模型\n", f"recipe {state.attrs['recipe']!r}")
        cursor = state["data_cursor"]
        check(text(cursor.attrs["kind"]) == "blob" and cursor.dtype == np.uint8, "blob kind/dtype")
        check(bytes(cursor[()]) == bytes((31 * i + 7) % 256 for i in range(13)), "blob bytes")

    for message in failures:
        print(f"check_hdf5_checkpoint: {path}: {message}")
    print(f"check_hdf5_checkpoint: {path}: {'FAILED' if failures else 'ok'}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_hdf5_checkpoint.py FILE.h5")
    sys.exit(main(sys.argv[1]))
