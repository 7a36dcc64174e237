"""What the signed champion costs a batch run: loading the champion with its OpenSSF model signature verified
(the four deployed files fetched again and hashed, `model-signing` verifying them) vs the same load with the sha256
checks alone, both on the demo-size MLP compiled by the real compile gate. Ratio = without / with (< 1: slower).
Also the compile gate's signing, as a line of its own.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Comparison, compare

POLICY = """name: bench-signing
compilation: {targets: [cpu], required_targets: [cpu], batch_buckets: [1, 64, 1024], variants: [f32]}
"""


def run() -> list[Comparison]:
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-signing-") as tmp:
        root = Path(tmp)
        (root / "policy.yaml").write_text(POLICY)
        os.environ.update(LOCKGATE_HOME=str(root / "home"), LOCKGATE_POLICY_FILE=str(root / "policy.yaml"),
                          LOCKGATE_LEDGER_KEY=str(root / "keys" / "ledger_ed25519"),
                          LOCKGATE_ARTIFACT_KEY=str(root / "keys" / "artifact.pem"))
        from benchmarks.bench_batch import _champion
        from tasks.gates import _load_verified
        from tasks.governance.artifact_signature import sign_version, verify_version
        from tasks.registration.inference import load_compiled, load_reference
        from tasks.registry import CHAMPION
        from tasks.settings import Settings
        from tasks.stores import cache_dir, policy_for, registry_for

        settings = Settings()
        _champion(settings)
        policy, registry = policy_for(settings), registry_for(settings)
        record = registry.require_alias(settings.model_name, CHAMPION)

        def sha_checks_only():
            model = load_compiled(registry, record, cache_dir(settings), policy.compilation.batch_buckets)
            load_reference(registry, record, cache_dir(settings))
            return model

        def signature_and_sha_checks():
            verify_version(settings, registry, record)  # what tasks.gates._load_verified adds before loading
            return sha_checks_only()

        _load_verified(settings, policy, record)  # the real path runs (and raises if the signature does not verify)
        load = compare("champion load before a batch run",
                       ("model signature verified, then the sha256-checked load", signature_and_sha_checks),
                       ("the sha256-checked load alone", sha_checks_only), repeats=7,
                       notes="once per batch run and process, not per partition")
        t0 = time.perf_counter()
        verify_version(settings, registry, record)
        verify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sign_version(settings, registry, record)
        sign_s = time.perf_counter() - t0
        signing = Comparison("compile gate: signing the version (4 files + identity)", "sign", "verify", sign_s,
                             verify_s, verify_s / sign_s, 1, load.peak_rss_mb,
                             f"sign {sign_s * 1e3:.0f} ms, verify {verify_s * 1e3:.0f} ms (first call in this "
                             "process includes importing model-signing)")
        return [load, signing]
