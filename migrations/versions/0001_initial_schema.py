"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28

Every table litscreen uses: application data, the LLM cache, kombu's broker tables (plus our bindings) and
Celery's result tables. The broker and result tables keep the sequences kombu and Celery map explicitly.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_cache',
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_app_cache'))
    )
    op.create_index(op.f('ix_app_cache_expires_at'), 'app_cache', ['expires_at'], unique=False)
    op.execute(sa.schema.CreateSequence(sa.Sequence('task_id_sequence')))
    op.create_table('celery_taskmeta',
    sa.Column('id', sa.Integer(), server_default=sa.text("nextval('task_id_sequence')"), nullable=False),
    sa.Column('task_id', sa.String(length=155), nullable=True),
    sa.Column('status', sa.String(length=50), nullable=True),
    sa.Column('result', sa.LargeBinary(), nullable=True),
    sa.Column('date_done', sa.DateTime(), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('children', sa.LargeBinary(), nullable=True),
    sa.Column('name', sa.String(length=155), nullable=True),
    sa.Column('args', sa.LargeBinary(), nullable=True),
    sa.Column('kwargs', sa.LargeBinary(), nullable=True),
    sa.Column('worker', sa.String(length=155), nullable=True),
    sa.Column('retries', sa.Integer(), nullable=True),
    sa.Column('queue', sa.String(length=155), nullable=True),
    sa.Column('stamps', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_celery_taskmeta')),
    sa.UniqueConstraint('task_id', name=op.f('uq_celery_taskmeta_task_id'))
    )
    op.execute(sa.schema.CreateSequence(sa.Sequence('taskset_id_sequence')))
    op.create_table('celery_tasksetmeta',
    sa.Column('id', sa.Integer(), server_default=sa.text("nextval('taskset_id_sequence')"), nullable=False),
    sa.Column('taskset_id', sa.String(length=155), nullable=True),
    sa.Column('result', sa.LargeBinary(), nullable=True),
    sa.Column('date_done', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_celery_tasksetmeta')),
    sa.UniqueConstraint('taskset_id', name=op.f('uq_celery_tasksetmeta_taskset_id'))
    )
    op.create_table('kombu_binding',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('exchange', sa.String(length=200), nullable=False),
    sa.Column('exchange_type', sa.String(length=20), nullable=False),
    sa.Column('routing_key', sa.String(length=255), nullable=False),
    sa.Column('pattern', sa.String(length=255), nullable=False),
    sa.Column('queue', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kombu_binding')),
    sa.UniqueConstraint('exchange', 'routing_key', 'pattern', 'queue', name=op.f('uq_kombu_binding_exchange_routing_key_pattern_queue'))
    )
    op.create_index(op.f('ix_kombu_binding_exchange'), 'kombu_binding', ['exchange'], unique=False)
    op.create_index(op.f('ix_kombu_binding_queue'), 'kombu_binding', ['queue'], unique=False)
    op.execute(sa.schema.CreateSequence(sa.Sequence('queue_id_sequence')))
    op.create_table('kombu_queue',
    sa.Column('id', sa.Integer(), server_default=sa.text("nextval('queue_id_sequence')"), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kombu_queue')),
    sa.UniqueConstraint('name', name=op.f('uq_kombu_queue_name'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    op.execute(sa.schema.CreateSequence(sa.Sequence('message_id_sequence')))
    op.create_table('kombu_message',
    sa.Column('id', sa.Integer(), server_default=sa.text("nextval('message_id_sequence')"), nullable=False),
    sa.Column('visible', sa.Boolean(), nullable=True),
    sa.Column('timestamp', sa.DateTime(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('version', sa.SmallInteger(), nullable=False),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['queue_id'], ['kombu_queue.id'], name='FK_kombu_message_queue'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kombu_message'))
    )
    op.create_index(op.f('ix_kombu_message_timestamp'), 'kombu_message', ['timestamp'], unique=False)
    op.create_index('ix_kombu_message_timestamp_id', 'kombu_message', ['timestamp', 'id'], unique=False)
    op.create_index(op.f('ix_kombu_message_visible'), 'kombu_message', ['visible'], unique=False)
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('picos', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('inclusion_criteria', sa.Text(), nullable=True),
    sa.Column('exclusion_criteria', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_projects_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects'))
    )
    op.create_index(op.f('ix_projects_owner_id'), 'projects', ['owner_id'], unique=False)
    op.create_table('literature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('abstract', sa.Text(), nullable=True),
    sa.Column('authors', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('year', sa.Integer(), nullable=True),
    sa.Column('journal', sa.Text(), nullable=True),
    sa.Column('doi', sa.String(length=255), nullable=True),
    sa.Column('pmid', sa.String(length=32), nullable=True),
    sa.Column('keywords', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('source_format', sa.String(length=20), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=True),
    sa.Column('label', sa.String(length=20), nullable=True),
    sa.Column('dedup_key', sa.String(length=600), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_literature_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_literature')),
    sa.UniqueConstraint('project_id', 'dedup_key', name=op.f('uq_literature_project_id_dedup_key'))
    )
    op.create_index(op.f('ix_literature_project_id'), 'literature', ['project_id'], unique=False)
    op.create_table('screening_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('task_type', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('total_items', sa.Integer(), nullable=False),
    sa.Column('total_batches', sa.Integer(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('model_config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('processed_items', sa.Integer(), nullable=False),
    sa.Column('success_items', sa.Integer(), nullable=False),
    sa.Column('failed_items', sa.Integer(), nullable=False),
    sa.Column('conflict_items', sa.Integer(), nullable=False),
    sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_estimate', sa.Numeric(precision=14, scale=6), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('chord_id', sa.String(length=155), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_screening_tasks_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_tasks'))
    )
    op.create_index(op.f('ix_screening_tasks_project_id'), 'screening_tasks', ['project_id'], unique=False)
    op.create_index(op.f('ix_screening_tasks_status'), 'screening_tasks', ['status'], unique=False)
    op.create_table('screening_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('batch_index', sa.Integer(), nullable=False),
    sa.Column('literature_ids', postgresql.ARRAY(sa.BigInteger()), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('celery_task_id', sa.String(length=155), nullable=True),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_checkpoint_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['screening_tasks.id'], name=op.f('fk_screening_batches_task_id_screening_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_batches')),
    sa.UniqueConstraint('task_id', 'batch_index', name=op.f('uq_screening_batches_task_id_batch_index'))
    )
    op.create_index(op.f('ix_screening_batches_celery_task_id'), 'screening_batches', ['celery_task_id'], unique=False)
    op.create_index('ix_screening_batches_status_lease', 'screening_batches', ['status', 'lease_expires_at'], unique=False)
    op.create_index(op.f('ix_screening_batches_task_id'), 'screening_batches', ['task_id'], unique=False)
    op.create_table('screening_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('literature_id', sa.Integer(), nullable=False),
    sa.Column('batch_index', sa.Integer(), nullable=False),
    sa.Column('decisions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('final_decision', sa.String(length=20), nullable=True),
    sa.Column('has_conflict', sa.Boolean(), nullable=False),
    sa.Column('manual_review_required', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_estimate', sa.Numeric(precision=14, scale=6), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('review_decision', sa.String(length=20), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['literature_id'], ['literature.id'], name=op.f('fk_screening_results_literature_id_literature'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_screening_results_reviewer_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['screening_tasks.id'], name=op.f('fk_screening_results_task_id_screening_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_screening_results')),
    sa.UniqueConstraint('task_id', 'literature_id', name=op.f('uq_screening_results_task_id_literature_id'))
    )
    op.create_index(op.f('ix_screening_results_final_decision'), 'screening_results', ['final_decision'], unique=False)
    op.create_index(op.f('ix_screening_results_literature_id'), 'screening_results', ['literature_id'], unique=False)
    op.create_index(op.f('ix_screening_results_task_id'), 'screening_results', ['task_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_screening_results_task_id'), table_name='screening_results')
    op.drop_index(op.f('ix_screening_results_literature_id'), table_name='screening_results')
    op.drop_index(op.f('ix_screening_results_final_decision'), table_name='screening_results')
    op.drop_table('screening_results')
    op.drop_index(op.f('ix_screening_batches_task_id'), table_name='screening_batches')
    op.drop_index('ix_screening_batches_status_lease', table_name='screening_batches')
    op.drop_index(op.f('ix_screening_batches_celery_task_id'), table_name='screening_batches')
    op.drop_table('screening_batches')
    op.drop_index(op.f('ix_screening_tasks_status'), table_name='screening_tasks')
    op.drop_index(op.f('ix_screening_tasks_project_id'), table_name='screening_tasks')
    op.drop_table('screening_tasks')
    op.drop_index(op.f('ix_literature_project_id'), table_name='literature')
    op.drop_table('literature')
    op.drop_index(op.f('ix_projects_owner_id'), table_name='projects')
    op.drop_table('projects')
    op.drop_index(op.f('ix_kombu_message_visible'), table_name='kombu_message')
    op.drop_index('ix_kombu_message_timestamp_id', table_name='kombu_message')
    op.drop_index(op.f('ix_kombu_message_timestamp'), table_name='kombu_message')
    op.drop_table('kombu_message')
    op.execute(sa.schema.DropSequence(sa.Sequence('message_id_sequence')))
    op.drop_index(op.f('ix_api_tokens_user_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('kombu_queue')
    op.execute(sa.schema.DropSequence(sa.Sequence('queue_id_sequence')))
    op.drop_index(op.f('ix_kombu_binding_queue'), table_name='kombu_binding')
    op.drop_index(op.f('ix_kombu_binding_exchange'), table_name='kombu_binding')
    op.drop_table('kombu_binding')
    op.drop_table('celery_tasksetmeta')
    op.execute(sa.schema.DropSequence(sa.Sequence('taskset_id_sequence')))
    op.drop_table('celery_taskmeta')
    op.execute(sa.schema.DropSequence(sa.Sequence('task_id_sequence')))
    op.drop_index(op.f('ix_app_cache_expires_at'), table_name='app_cache')
    op.drop_table('app_cache')
