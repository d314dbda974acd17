"""Email templates (autoescaped HTML and plain text) for one alarm notice or a digest of several."""

from __future__ import annotations

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

PLAIN = """\
{% for n in notices -%}
{{ n.severity|upper }} - {{ n.rule_name }} {{ n.transition }} on {{ n.device_name }}
  Value: {{ n.value if n.value is not none else '-' }}{% if n.key %} ({{ n.key }}){% endif %}
  Condition: {{ n.threshold or '-' }}
  Time: {{ n.at }}
{%- if n.actor %}
  By: {{ n.actor }}{% endif %}{% if n.note %}
  Note: {{ n.note }}{% endif %}
  Alarm: {{ n.link }}

{% endfor -%}
-- Gito
"""

HTML = """\
<html><body style="font-family: sans-serif">
<h2>{{ subject }}</h2>
<table cellpadding="4" style="border-collapse: collapse">
<tr><th align="left">Severity</th><th align="left">Device</th><th align="left">Rule</th>
<th align="left">Value</th><th align="left">Condition</th><th align="left">Time</th><th></th></tr>
{% for n in notices %}
<tr><td>{{ n.severity|upper }}</td><td>{{ n.device_name }}</td><td>{{ n.rule_name }} ({{ n.transition }})</td>
<td>{{ n.value if n.value is not none else '-' }}{% if n.key %} ({{ n.key }}){% endif %}</td>
<td>{{ n.threshold or '-' }}</td><td>{{ n.at }}</td><td><a href="{{ n.link }}">Open alarm</a></td></tr>
{% endfor %}
</table>
</body></html>
"""

ENVIRONMENT = Environment(
    loader=DictLoader({'alarm.txt': PLAIN, 'alarm.html': HTML}),
    autoescape=select_autoescape(enabled_extensions=('html',), default_for_string=True),
    undefined=StrictUndefined,
)
