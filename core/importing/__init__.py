"""Import: files (`responses`, `labels`), Inspect AI logs (`inspect_logs`), datasets at
production scale (`lake`, `lake_files`, `lake_scan`, `keep_sample`) and judged counts from any
engine (`counts`) into the store. Read (`read`, `values`), check (`spec`, `check`, `held`), then
write all or nothing; `report` says what an import did."""
