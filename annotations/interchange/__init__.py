"""Dataset interchange: COCO export (streamed), COCO and Pascal VOC import, safe archive reading, label maps.

Pure modules (no Django): `archive`, `label_map`, `dataset`, `coco_format`, `coco_import`, `voc_import`.
Django services: `export_selection` (what is exported), `coco_export` (the streaming writer), `dataset_import`
(the one-transaction import) and `jobs` (the export/import jobs behind the API and the Celery tasks).
"""
