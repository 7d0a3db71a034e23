"""fortunes: the /fortunes page both subjects serve, from the table's
rows (id, message): the fortune added at request time, sorted by
message, escaped, as TechEmpower's test asks."""

import html


def page(rows):
    rows = list(rows) + [(0, "Additional fortune added at request time.")]
    rows.sort(key=lambda r: r[1])
    body = ["<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
            "<table><tr><th>id</th><th>message</th></tr>"]
    for fid, msg in rows:
        body.append("<tr><td>%d</td><td>%s</td></tr>" % (fid, html.escape(msg, quote=True)))
    body.append("</table></body></html>")
    return "".join(body)
