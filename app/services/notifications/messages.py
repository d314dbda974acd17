"""What a notification says: subject, email bodies, Slack blocks and the webhook JSON, for one notice or a digest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson

from app.models.alarm_notice import AlarmNotice
from app.services.notifications.templates import ENVIRONMENT

Json = dict[str, Any]


def notice_to_json(notice: AlarmNotice) -> Json:
    data = asdict(notice)
    return {k: (str(v) if k.endswith('_id') else v.isoformat() if isinstance(v, datetime) else v)
            for k, v in data.items()}


@dataclass(frozen=True)
class Message:
    subject: str
    notices: list[Json]  # each with a `link`
    digest: bool

    @property
    def event_type(self) -> str:
        return 'alarm.digest' if self.digest else f'alarm.{self.notices[0]["transition"]}'

    def plain(self) -> str:
        return ENVIRONMENT.get_template('alarm.txt').render(notices=self.notices, subject=self.subject)

    def html(self) -> str:
        return ENVIRONMENT.get_template('alarm.html').render(notices=self.notices, subject=self.subject)

    def webhook_body(self, timestamp: datetime) -> bytes:
        data: Json = {'alarms': self.notices} if self.digest else self.notices[0]
        return orjson.dumps({'type': self.event_type, 'timestamp': timestamp.isoformat(), 'data': data})

    def slack_body(self) -> bytes:
        blocks: list[Json] = [{'type': 'header', 'text': {'type': 'plain_text', 'text': self.subject[:150]}}]
        for notice in self.notices[:20]:
            value = notice.get('value')
            fields = [
                f'*Severity:* {notice["severity"]}', f'*Device:* {_slack(notice["device_name"])}',
                f'*Rule:* {_slack(notice["rule_name"])}',
                f'*Value:* {"-" if value is None else _slack(str(value))}',
            ]
            blocks.append({'type': 'section', 'fields': [{'type': 'mrkdwn', 'text': f} for f in fields]})
            blocks.append({'type': 'actions', 'elements': [
                {'type': 'button', 'text': {'type': 'plain_text', 'text': 'Open alarm'}, 'url': notice['link']},
            ]})
        return orjson.dumps({'text': self.subject, 'blocks': blocks[:50]})


def build_message(notices: list[Json], *, base_url: str) -> Message:
    linked = [{**n, 'link': _link(base_url, n)} for n in notices]
    first = linked[0]
    severity = str(first['severity']).upper()
    if len(linked) > 1:
        subject = f'[{severity}] {first["rule_name"]} {first["transition"]} on {len(linked)} devices'
    else:
        subject = f'[{severity}] {first["rule_name"]} {first["transition"]} on {first["device_name"]}'
    return Message(subject=subject, notices=linked, digest=len(linked) > 1)


def _link(base_url: str, notice: Json) -> str:
    alarm_id = notice.get('alarm_id')
    return f'{base_url.rstrip("/")}/alarms/{alarm_id}' if alarm_id else f'{base_url.rstrip("/")}/notifications'


def _slack(text: str) -> str:
    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
