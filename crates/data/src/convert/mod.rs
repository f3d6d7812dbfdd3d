//! Importers from other annotation formats (COCO JSON, Pascal VOC XML) to YOLO.
