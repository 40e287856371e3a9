"""The faces of `Results` that are text: JSON, CSV and `render` for every format (`report`),
text and Markdown (`report_text`), and the exports of ratings, responses and results
(`export`) and of a kept fit's draws (`export_draws`)."""
