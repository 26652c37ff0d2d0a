-- Grid boundaries, imported from GeoJSON (WGS-84 Polygon or MultiPolygon). Released: never edit.
ALTER TABLE server_grids ADD COLUMN geometry TEXT;
