"""What stages hand each other: picklable (Dagster's IO manager stores them), summed and summarised."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from sf_pipeline.sync.manifests import ChangeCounts, ChangedObject, ChangeManifest, ExtractManifest, SyncSummary
from sf_pipeline_tests.sync.stages import T0, extracted, later, lead


def manifest(tmp_path: Path) -> ChangeManifest:
    lead_extract = extracted(tmp_path, [lead(1, at=later(3)), lead(2)])
    extract = ExtractManifest(integration="acme", run_id="r1", work_dir=str(tmp_path), objects=[lead_extract],
                              api_calls=7, duration_s=1.5)
    return ChangeManifest(
        extract=extract,
        objects=[ChangedObject("Lead", ChangeCounts(created=2, invalid_values=1), warnings=[{"id": "a"}]),
                 ChangedObject("Contact", ChangeCounts(updated=3, unchanged=4, deleted=1), warnings=[{"id": "b"}])],
        duration_s=0.5,
    )


def test_manifests_survive_pickling_with_their_mapping(tmp_path: Path) -> None:
    changes = manifest(tmp_path)
    again = pickle.loads(pickle.dumps(changes))
    assert again == changes
    assert again.extract.objects[0].mapping.compile().convert(lead(1))  # converters rebuilt from plain data


def test_counts_and_warnings_add_up_over_objects(tmp_path: Path) -> None:
    changes = manifest(tmp_path)
    assert changes.counts == ChangeCounts(created=2, updated=3, unchanged=4, deleted=1, invalid_values=1)
    assert changes.counts.written == 6
    assert changes.warnings == [{"id": "a"}, {"id": "b"}]
    assert changes.extract.fetched == 2


def test_the_summary_has_every_figure_and_json_watermarks(tmp_path: Path) -> None:
    summary = SyncSummary.of(manifest(tmp_path), duration_s=2.34567)
    assert summary.counts() == {"fetched": 2, "created": 2, "updated": 3, "unchanged": 4, "deleted": 1,
                                "skipped": 0, "invalid_values": 1, "invalid_records": 0, "api_calls": 7,
                                "duration_s": 2.346, "warnings": 1}
    shape = json.loads(json.dumps(summary.as_dict()))
    assert shape["watermarks"] == {"Lead": {"before": None, "after": later(3).isoformat(), "full": True}}
    assert summary.watermarks["Lead"].after == later(3) and later(3) > T0
