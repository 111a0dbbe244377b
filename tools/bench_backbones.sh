#!/usr/bin/env bash
# Training img/s (pwc loss, batch 32, random data) and batch-1 inference ms (Keras, ONNX Runtime, LiteRT) of
# every backbone, for docs/models.md "Backbones". Pauses a running flzoo-train (SIGSTOP) while it measures and
# resumes it afterwards, so the figures are those of a quiet machine.
#   bash tools/bench_backbones.sh > bench_backbones.jsonl
set -u
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
paused=$(pgrep -f "flzoo.train.cli|flzoo-train" || true)
[ -n "$paused" ] && kill -STOP $paused
trap '[ -n "$paused" ] && kill -CONT $paused' EXIT
bench() { python tools/bench_models.py --variant pwc --train-batches 15 --infer-runs 50 "$@" 2>/dev/null | tail -1; }
bench --backbone lite --input-size 128 --onnx --litert
for backbone in mobilenet_v2 efficientnet_lite0; do
  bench --backbone $backbone --input-size 128 --freeze 8 --onnx --litert
  for size in 128 160 192; do
    for freeze in 0 8; do
      [ "$size$freeze" = 1288 ] && continue
      bench --backbone $backbone --input-size $size --freeze $freeze --skip-infer
    done
  done
done
