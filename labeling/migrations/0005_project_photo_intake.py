"""Issue 8: a project follows new photos or freezes its photo set, and records the last photos that joined."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0004_rule_hits'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='last_joined_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='project',
            name='last_joined_count',
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name='project',
            name='photo_set',
            field=models.CharField(choices=[('follow', 'Follow new photos'), ('frozen', 'Frozen')], default='follow', help_text='Follow: photos imported later that match the filters join the queue while the project is open. Frozen: they do not (saving the settings still brings the queue in line with the filters).', max_length=8),
        ),
    ]
