"""Common alerting thresholds as ready-made rules.

- error rate above 5 % in the last hour (at least 20 actions, so 1 failure in 2 is no alert);
- average latency above 2000 ms for any provider (grouped by provider, last 15 minutes,
  at least 5 timed actions);
- more than 10 failed actions in 5 minutes;
- more than 50 audit changes in 1 minute.
"""

from app.alerts.schemas import PresetName, PresetRead, RuleCreate

PRESETS: dict[PresetName, PresetRead] = {
    preset.preset: preset
    for preset in (
        PresetRead(
            preset="error_rate",
            description="Error rate > 5% in the last hour",
            rule=RuleCreate(
                name="Error rate above 5% in the last hour",
                metric="error_rate",
                op=">",
                threshold=5,
                window_minutes=60,
                min_count=20,
                cooldown_minutes=60,
            ),
        ),
        PresetRead(
            preset="provider_latency",
            description="Average latency > 2000 ms for any provider",
            rule=RuleCreate(
                name="Average latency above 2000 ms for a provider",
                metric="latency_avg",
                op=">",
                threshold=2000,
                window_minutes=15,
                min_count=5,
                group_by="provider_name",
                cooldown_minutes=30,
            ),
        ),
        PresetRead(
            preset="failure_spike",
            description="Failed actions spike: more than 10 in 5 minutes",
            rule=RuleCreate(
                name="More than 10 failed actions in 5 minutes",
                metric="failure_count",
                op=">",
                threshold=10,
                window_minutes=5,
                cooldown_minutes=15,
            ),
        ),
        PresetRead(
            preset="audit_activity",
            description="Unusual audit activity: more than 50 changes in 1 minute",
            rule=RuleCreate(
                name="More than 50 audit changes in 1 minute",
                metric="audit_changes",
                op=">",
                threshold=50,
                window_minutes=1,
                cooldown_minutes=15,
            ),
        ),
    )
}
