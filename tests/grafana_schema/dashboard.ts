// The dashboard JSON model as Grafana's published schema (@grafana/schema, generated from
// Grafana's CUE kinds) describes it, in the shape a JSON file holds it.
// tests/test_dashboard_schema.py writes each dashboard of dashboards/ as a TypeScript object
// literal of type `Dashboard` and has `tsc` check it: a field of the wrong type, an unknown
// field, a missing required field or a value outside an enumeration is a compile error.
//
// Two deliberate departures from the generated TypeScript, both where Grafana's CUE kind itself
// is open (`...`) and the TypeScript generator closes it: annotation queries and template
// variables may carry the fields their datasource adds (a Prometheus annotation's `expr`, a query
// variable's `definition`); the fields the schema names are still checked.  Panel targets are
// checked against the common `DataQuery` (a datasource defines the rest of a query).  Panel
// `options` and `fieldConfig.defaults.custom` are checked against the panel plugin's own schema.

import type { DataQuery } from '@grafana/schema';
import type * as raw from '@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen';
import type * as annolist from '@grafana/schema/dist/esm/raw/composable/annotationslist/panelcfg/x/AnnotationsListPanelCfg_types.gen';
import type * as barchart from '@grafana/schema/dist/esm/raw/composable/barchart/panelcfg/x/BarChartPanelCfg_types.gen';
import type * as bargauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as candlestick from '@grafana/schema/dist/esm/raw/composable/candlestick/panelcfg/x/CandlestickPanelCfg_types.gen';
import type * as canvas from '@grafana/schema/dist/esm/raw/composable/canvas/panelcfg/x/CanvasPanelCfg_types.gen';
import type * as dashlist from '@grafana/schema/dist/esm/raw/composable/dashboardlist/panelcfg/x/DashboardListPanelCfg_types.gen';
import type * as gauge from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type * as geomap from '@grafana/schema/dist/esm/raw/composable/geomap/panelcfg/x/GeomapPanelCfg_types.gen';
import type * as heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';
import type * as histogram from '@grafana/schema/dist/esm/raw/composable/histogram/panelcfg/x/HistogramPanelCfg_types.gen';
import type * as logs from '@grafana/schema/dist/esm/raw/composable/logs/panelcfg/x/LogsPanelCfg_types.gen';
import type * as news from '@grafana/schema/dist/esm/raw/composable/news/panelcfg/x/NewsPanelCfg_types.gen';
import type * as nodegraph from '@grafana/schema/dist/esm/raw/composable/nodegraph/panelcfg/x/NodeGraphPanelCfg_types.gen';
import type * as piechart from '@grafana/schema/dist/esm/raw/composable/piechart/panelcfg/x/PieChartPanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as statetimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as statushistory from '@grafana/schema/dist/esm/raw/composable/statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type * as trend from '@grafana/schema/dist/esm/raw/composable/trend/panelcfg/x/TrendPanelCfg_types.gen';
import type * as xychart from '@grafana/schema/dist/esm/raw/composable/xychart/panelcfg/x/XYChartPanelCfg_types.gen';

/**
 * `T` as a JSON file holds it.  The generated types use TypeScript string enums, which only an
 * enum member satisfies; a JSON file holds the member's value ("palette-classic"), so each
 * string enum becomes the union of its values.  Everything else keeps its type.
 */
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer Item>
      ? Array<Json<Item>>
      : T extends object
        ? { [Key in keyof T]: Json<T[Key]> }
        : T;

/** A struct the CUE kind leaves open (`...`): the named fields are checked, others allowed. */
type Open<T> = T & { [field: string]: unknown };

/** A panel or annotation query: `refId` and the common fields; the datasource defines the rest. */
type Target = Open<Json<DataQuery>>;

/** A panel plugin that declares no custom field config: `custom`, if present, is empty. */
type NoCustom = Record<string, never>;

type FieldConfigSourceOf<Custom> = Omit<Json<raw.FieldConfigSource>, 'defaults'> & {
  defaults: Omit<Json<raw.FieldConfig>, 'custom'> & { custom?: Json<Custom> };
};

type PanelOf<Type extends string, Options, Custom> = Omit<
  Json<raw.Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets'
> & {
  type: Type;
  options?: Json<Options>;
  fieldConfig?: FieldConfigSourceOf<Custom>;
  targets?: Target[];
};

/** Every core panel plugin the schema package describes, by the plugin id a panel's `type` names. */
export type Panel =
  | PanelOf<'annolist', annolist.Options, NoCustom>
  | PanelOf<'barchart', barchart.Options, barchart.FieldConfig>
  | PanelOf<'bargauge', bargauge.Options, NoCustom>
  | PanelOf<'candlestick', candlestick.Options, candlestick.FieldConfig>
  | PanelOf<'canvas', canvas.Options, NoCustom>
  | PanelOf<'dashlist', dashlist.Options, NoCustom>
  | PanelOf<'gauge', gauge.Options, NoCustom>
  | PanelOf<'geomap', geomap.Options, NoCustom>
  | PanelOf<'heatmap', heatmap.Options, heatmap.FieldConfig>
  | PanelOf<'histogram', histogram.Options, histogram.FieldConfig>
  | PanelOf<'logs', logs.Options, NoCustom>
  | PanelOf<'news', news.Options, NoCustom>
  | PanelOf<'nodeGraph', nodegraph.Options, NoCustom>
  | PanelOf<'piechart', piechart.Options, piechart.FieldConfig>
  | PanelOf<'stat', stat.Options, NoCustom>
  | PanelOf<'state-timeline', statetimeline.Options, statetimeline.FieldConfig>
  | PanelOf<'status-history', statushistory.Options, statushistory.FieldConfig>
  | PanelOf<'table', table.Options, table.FieldConfig>
  | PanelOf<'text', text.Options, NoCustom>
  | PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>
  | PanelOf<'trend', trend.Options, trend.FieldConfig>
  | PanelOf<'xychart', xychart.Options, xychart.FieldConfig>;

export type RowPanel = Omit<Json<raw.RowPanel>, 'panels'> & { panels: Panel[] };

export type AnnotationQuery = Open<
  Omit<Json<raw.AnnotationQuery>, 'datasource' | 'target'> & {
    datasource?: Json<raw.DataSourceRef> | null;
    target?: Open<Json<raw.AnnotationTarget>> | Target;
  }
>;

export type VariableModel = Open<
  Omit<Json<raw.VariableModel>, 'datasource'> & { datasource?: Json<raw.DataSourceRef> | null }
>;

export type Dashboard = Omit<Json<raw.Dashboard>, 'panels' | 'annotations' | 'templating'> & {
  panels?: Array<Panel | RowPanel>;
  annotations?: { list?: AnnotationQuery[] };
  templating?: { list?: VariableModel[] };
};
