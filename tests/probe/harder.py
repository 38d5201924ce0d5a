"""A harder check for "none of these": clothing-small's test photos as a person's own photos
look, less uniform than catalogue shots (another crop, other light, a tilt, a background, a
poorer camera). A model of the catalogue photos should not call these "none of these".

    python harder.py SRC OUT [SEED]

SRC is a folder of class folders (clothing-small/test); OUT receives the same class folders,
one changed photo for each photo, each changed in two ways drawn at random (seeded: the same
photos every run). Needs Pillow and numpy.
"""

import random
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps


def off_centre_crop(img, rng):
    """A part of the photo, 55-80 % of its side, anywhere in it."""
    w, h = img.size
    f = rng.uniform(0.55, 0.8)
    cw, ch = int(w * f), int(h * f)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return img.crop((x, y, x + cw, y + ch))


def other_light(img, rng):
    """Darker or brighter, another contrast, a warm or cool cast."""
    img = ImageEnhance.Brightness(img).enhance(rng.choice([rng.uniform(0.5, 0.75), rng.uniform(1.2, 1.45)]))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
    cast = np.array(rng.choice([(1.12, 1.0, 0.82), (0.85, 0.97, 1.12)]), np.float32)
    return Image.fromarray(np.clip(np.asarray(img, np.float32) * cast, 0, 255).astype(np.uint8))


def tilted(img, rng):
    """Turned 8-20 degrees either way, the corners filled with the photo's edge colour."""
    edge = tuple(int(v) for v in np.asarray(img)[0].mean(axis=0))
    return img.rotate(rng.choice([-1, 1]) * rng.uniform(8, 20), resample=Image.BILINEAR, fillcolor=edge)


def on_a_background(img, rng):
    """Smaller, on a plain, muted background with some texture and light falling across it (a
    table, a floor, a bed), somewhere off centre."""
    w, h = img.size
    side = max(w, h)
    grey = rng.randint(70, 200)
    colour = np.array([grey + rng.randint(-35, 35) for _ in range(3)], np.float32)
    gen = np.random.default_rng(rng.randint(0, 2**31))
    grain = Image.fromarray(np.clip(128 + gen.normal(0, 40, (side, side)), 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
    texture = (np.asarray(grain, np.float32)[:, :, None] - 128) * 0.4
    ramp = np.linspace(-25, 25, side, dtype=np.float32)[None, :, None]
    back = Image.fromarray(np.clip(colour + texture + ramp, 0, 255).astype(np.uint8))
    f = rng.uniform(0.6, 0.8)
    small = img.resize((int(w * f), int(h * f)), Image.BILINEAR)
    back.paste(small, (rng.randint(0, side - small.width), rng.randint(0, side - small.height)))
    return back


def poor_camera(img, rng):
    """Blurred a little and saved as a low-quality JPEG."""
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.8)))
    out = BytesIO()
    img.save(out, "JPEG", quality=rng.randint(15, 35))
    return Image.open(BytesIO(out.getvalue())).convert("RGB")


CHANGES = [off_centre_crop, other_light, tilted, on_a_background, poor_camera]


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    count = 0
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        (out / class_dir.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(class_dir.iterdir()):
            try:
                img = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
            except OSError:
                continue
            changes = rng.sample(CHANGES, 2)
            # A crop or a background first, then light and camera: as a photo is taken.
            for change in sorted(changes, key=CHANGES.index):
                img = change(img, rng)
            img.save(out / class_dir.name / f"{photo.stem}.jpg", "JPEG", quality=92)
            count += 1
    print(f"{count} photos changed into {out}")


if __name__ == "__main__":
    main()
