#!/usr/bin/python3
"""Regenerates tests/unit/vectors/thingy52_sound_sox.txt: Thingy:52 microphone
frames and the samples they decode to, both made by sox (an independent IMA
ADPCM encoder and decoder), so that protocol/thingy52_sound.c is checked
against someone else's arithmetic.

sox writes IMA ADPCM in WAV blocks (-e ima-adpcm): per 256-byte block a
little-endian header (int16 first sample, u8 step index, u8 reserved), then
504 codes, two a byte, *low* nibble first; the header sample is itself the
block's first output sample. A Thingy frame is a big-endian int16 predictor,
the step index and 256 codes, *high* nibble first, and outputs only the 256
decoded codes. So each WAV block's header and its first 256 codes are
re-framed (predictor to big-endian, nibbles swapped) and the expected samples
are what sox's own decoder output for those 256 codes (block samples 1-256).
(sox's headerless `-t ima` files use a multiply-and-shift step, (2c+1)*step/8,
which rounds differently from the IMA reference's shift-and-add that WAV IMA
and the Thingy use; they are not used here.)

Usage: tests/audio/make_sox_vectors.py [OUT]  (needs sox; run from the repo root)
"""
import os
import struct
import subprocess
import sys
import tempfile

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/unit/vectors/thingy52_sound_sox.txt"
RATE = 16000
# name, sox synth effect chain: a sweep, noise, a full-scale square (clamping,
# high step indexes), a very quiet tone (low indexes), speech-band noise bursts
SIGNALS = [
    ("sweep", ["synth", "0.1", "sine", "200-6000", "vol", "0.8"]),
    ("noise", ["synth", "0.1", "whitenoise", "vol", "0.5"]),
    ("square", ["synth", "0.1", "square", "150", "vol", "1.0"]),
    ("quiet", ["synth", "0.1", "sine", "1000", "vol", "0.001"]),
    ("pink", ["synth", "0.1", "pinknoise", "tremolo", "20", "90"]),
]


def sox(*args):
    subprocess.run(["sox", *args], check=True, stderr=subprocess.PIPE)


def main():
    lines = ["# Thingy:52 microphone frames made by sox %s; regenerate with "
             "tests/audio/make_sox_vectors.py" % sox_version(),
             "# frame <name> <131 bytes hex>, then pcm <256 samples sox decoded>"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, chain in SIGNALS:
            src = os.path.join(tmp, name + ".wav")
            ima = os.path.join(tmp, name + "-ima.wav")
            dec = os.path.join(tmp, name + ".s16")
            sox("-n", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", src, *chain)
            sox(src, "-e", "ima-adpcm", ima)
            sox(ima, "-t", "s16", "-e", "signed-integer", dec)
            data, align = wav_data(ima)
            raw = open(dec, "rb").read()
            pcm = struct.unpack("<%dh" % (len(raw) // 2), raw)
            per_block = 1 + (align - 4) * 2
            for b in range(len(data) // align):
                blk = data[b * align:(b + 1) * align]
                pred, index = struct.unpack("<hB", blk[:3])
                codes = []
                for byte in blk[4:]:
                    codes += [byte & 0x0F, byte >> 4]
                codes = codes[:256]
                frame = struct.pack(">hB", pred, index) + bytes(
                    (codes[2 * i] << 4) | codes[2 * i + 1] for i in range(128))
                expect = pcm[b * per_block + 1:b * per_block + 257]
                if len(expect) < 256:
                    break
                lines.append("frame %s-%d %s" % (name, b, frame.hex()))
                lines.append("pcm " + " ".join(str(v) for v in expect))
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d frames)" % (OUT, sum(1 for l in lines if l.startswith("frame"))))


def wav_data(path):
    w = open(path, "rb").read()
    fmt = w.index(b"fmt ")
    tag, channels, _, _, align = struct.unpack("<HHIIH", w[fmt + 8:fmt + 22])
    assert tag == 0x11 and channels == 1, "not mono IMA ADPCM"
    i = w.index(b"data")
    n = struct.unpack("<I", w[i + 4:i + 8])[0]
    return w[i + 8:i + 8 + n], align


def sox_version():
    r = subprocess.run(["sox", "--version"], capture_output=True, text=True)
    return r.stdout.strip().split()[-1] if r.returncode == 0 else "?"


if __name__ == "__main__":
    main()
