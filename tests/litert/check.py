"""The standalone .tflite export, run by Google's LiteRT (ai-edge-litert from PyPI) with no
Fewshot code, against Fewshot's own predictions on the same photos.

usage: check.py squares OUT_DIR PHOTO...
       check.py agree MODEL.tflite PREDICTIONS.txt MIN_AGREEMENT
       check.py label MODEL.tflite PHOTO

`squares` makes each photo what the .tflite file's metadata asks for (RGB, transparency laid
on white, the centre square, resized to 224x224 with PIL's bilinear filter) and saves it as
OUT_DIR/<its folder>/<name>.png. Both sides then read the same pixels: otherwise the two JPEG
decoders' differences (Fewshot's and PIL's) are measured too.

`label` prints the label the file gives one photo (made a square as `squares` does).

`agree` runs the file on each photo of PREDICTIONS.txt (`fewshot predict` output: `path<TAB>label
p | label p | ...`, most likely first) and fails under MIN_AGREEMENT (a share, 0 to 1).
"""
import os
import json
import sys

import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert import schema_py_generated as schema


def metadata(path):
    """The file's `fewshot` metadata entry, read with LiteRT's own schema module."""
    buf = open(path, "rb").read()
    model = schema.Model.GetRootAsModel(buf, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == b"fewshot":
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    raise SystemExit("the file has no fewshot metadata")


def square_224(path, framing):
    im = Image.open(path)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    im = im.convert("RGB")
    w, h = im.size
    if framing == "pad":
        side = max(w, h)
        square = Image.new("RGB", (side, side), (128, 128, 128))
        square.paste(im, ((side - w) // 2, (side - h) // 2))
        im = square
    else:
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(im.resize((224, 224), Image.BILINEAR), np.uint8)


def squares(out_dir, photos):
    for path in photos:
        folder = os.path.join(out_dir, os.path.basename(os.path.dirname(path)))
        os.makedirs(folder, exist_ok=True)
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        Image.fromarray(square_224(path, "crop")).save(os.path.join(folder, name))


def label(model_path, photo):
    labels = metadata(model_path)["labels"]
    interpreter = Interpreter(model_path=model_path)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp["index"], square_224(photo, metadata(model_path)["framing"])[None])
    interpreter.invoke()
    print(labels[int(np.argmax(interpreter.get_tensor(out["index"])[0]))])


def agree(model_path, predictions_path, min_agreement):
    meta = metadata(model_path)
    labels = meta["labels"]
    interpreter = Interpreter(model_path=model_path, num_threads=2)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 224, 224, 3] and inp["dtype"] == np.uint8, inp
    assert list(out["shape"]) == [1, len(labels)] and out["dtype"] == np.float32, out

    rows = [line.rstrip("\n").split("\t")[:2] for line in open(predictions_path) if "\t" in line]
    agree, differences, right = 0, [], {"fewshot": 0, "litert": 0}
    for path, shown in rows:
        theirs = {}
        for part in shown.split(" | "):
            label, p = part.rsplit(" ", 1)
            theirs[label] = float(p)
        fewshot_label = shown.split(" | ")[0].rsplit(" ", 1)[0]
        pixels = np.asarray(Image.open(path).convert("RGB"), np.uint8)
        assert pixels.shape == (224, 224, 3), f"{path} is not one of the squares"
        interpreter.set_tensor(inp["index"], pixels[None])
        interpreter.invoke()
        p = interpreter.get_tensor(out["index"])[0]
        assert abs(float(p.sum()) - 1) < 1e-4, p
        litert_label = labels[int(np.argmax(p))]
        agree += litert_label == fewshot_label
        differences += [abs(float(p[labels.index(l)]) - q) for l, q in theirs.items()]
        truth = path.split("/")[-2]
        if truth in labels:
            right["fewshot"] += fewshot_label == truth
            right["litert"] += litert_label == truth
    n = len(rows)
    share = agree / n
    print(f"# LiteRT, {meta['arithmetic']} ({len(labels)} classes, mirror averaged: {meta['mirrorAveraged']}, closer view: {meta['closerViewZoom']}, "
          f"{os.path.getsize(model_path) / 1e6:.1f} MB): "
          f"same class as Fewshot on {agree} of {n} photos ({100 * share:.1f} %); "
          f"probabilities differ by {np.mean(differences):.4f} on average, {np.max(differences):.4f} at most; "
          f"right on the labelled ones: Fewshot {right['fewshot']}, LiteRT {right['litert']}")
    if share < min_agreement:
        raise SystemExit(f"LiteRT agrees with Fewshot on {100 * share:.1f} % of photos, under {100 * min_agreement:.0f} %")


if __name__ == "__main__":
    if sys.argv[1:2] == ["squares"]:
        squares(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:2] == ["label"] and len(sys.argv) == 4:
        label(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["agree"] and len(sys.argv) == 5:
        agree(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
