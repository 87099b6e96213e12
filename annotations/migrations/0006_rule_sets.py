"""Diagnosis rule sets as versioned data; seeds the shipped default (active) and FAB rule sets.

The seed reads `annotations.counting.rules` as of this migration. A later change to the shipped rules must reach existing
databases as a new version (a new migration or `POST /api/v1/rule-sets`), never by editing a stored row.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from annotations.counting.rules import DEFAULT_RULE_SET, FAB_RULE_SET, parse_rule_set

SHIPPED = (
    ("default", DEFAULT_RULE_SET, True, "shipped default: ALL when lymphoblasts > 20% (seed paper)"),
    ("fab", FAB_RULE_SET, False, "shipped FAB variant: blast thresholds 30%"),
)


def seed(apps, schema_editor):
    RuleSet = apps.get_model("annotations", "RuleSet")
    for name, content, active, note in SHIPPED:
        RuleSet.objects.get_or_create(
            name=name,
            version=1,
            # Stored as the rule-set service stores content: with every default written out.
            defaults={"content": parse_rule_set(content).to_dict(), "active": active, "note": note},
        )


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0005_double_review'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RuleSet',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=64, validators=[django.core.validators.RegexValidator('^[a-z0-9][a-z0-9._-]{0,63}$', "Use lower-case letters, digits, '.', '_' or '-' (e.g. 'default', 'fab').")])),
                ('version', models.PositiveIntegerField()),
                ('content', models.JSONField()),
                ('note', models.TextField(blank=True, default='', help_text='why this version was made')),
                ('active', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name', '-version'],
                'constraints': [models.UniqueConstraint(fields=('name', 'version'), name='rule_set_name_version_unique'), models.UniqueConstraint(condition=models.Q(('active', True)), fields=('active',), name='one_active_rule_set'), models.CheckConstraint(condition=models.Q(('version__gte', 1)), name='rule_set_version_positive')],
            },
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
