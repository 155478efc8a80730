"""Issue 8: a photo can be retired or excluded (and restored); quota counts group by status too."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0005_importitem_reason_code'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='image',
            name='image_cat_subcat',
        ),
        migrations.AddField(
            model_name='image',
            name='status',
            field=models.CharField(choices=[('active', 'Active'), ('retired', 'Retired'), ('excluded', 'Excluded')], db_default='active', default='active', max_length=16),
        ),
        migrations.AddField(
            model_name='image',
            name='status_changed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='image',
            name='status_changed_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='image',
            name='status_reason',
            field=models.CharField(blank=True, db_default='', help_text='Why it was retired or excluded.', max_length=300),
        ),
        migrations.AddIndex(
            model_name='image',
            index=models.Index(fields=['category', 'subcategory', 'status'], name='image_cat_subcat_status'),
        ),
    ]
