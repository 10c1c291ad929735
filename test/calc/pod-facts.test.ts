/** podFacts: datastore readiness of a gateway pod, including the Elastic IP standby's rule. */
import { describe, expect, it } from 'vitest';
import type { Pod } from '../../src/api/index.js';
import { podFacts } from '../../src/calc/pod-facts.js';

const pod = (annotations: Record<string, string>, conditions: { type: string; status: string }[]): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'red-1', namespace: 'default', annotations },
  spec: { nodeName: 'n1', containers: [{ name: 'gateway' }] },
  status: { phase: 'Running', podIP: '100.64.0.5', conditions },
} as unknown as Pod);

const EIPS = { 'cni.projectcalico.org/awsElasticIPs': '["203.0.113.7"]' };

describe('podFacts', () => {
  it('a gateway with Elastic IPs and no standby is ready by its Ready condition alone', () => {
    expect(podFacts(pod(EIPS, [{ type: 'Ready', status: 'True' }])).ready).toBe(true);
  });

  it('an Elastic IP standby is a gateway only while the fabric reports it Ready (its Elastic IP held)', () => {
    const standby = { ...EIPS, 'egw.io/elastic-ip-standby': 'true' };
    expect(podFacts(pod(standby, [{ type: 'Ready', status: 'True' }]))).toMatchObject({ ready: false, notReadyReason: 'Elastic IP standby holding no Elastic IP' });
    expect(podFacts(pod(standby, [{ type: 'Ready', status: 'True' }, { type: 'EgwAwsReady', status: 'False' }])).ready).toBe(false);
    expect(podFacts(pod(standby, [{ type: 'Ready', status: 'True' }, { type: 'EgwAwsReady', status: 'True' }])).ready).toBe(true);
    // Not Ready stays the first reason.
    expect(podFacts(pod(standby, [{ type: 'Ready', status: 'False' }, { type: 'EgwAwsReady', status: 'True' }])).notReadyReason).toBe('Ready condition is not True');
    // "false" or no Elastic IPs: the standby rule does not apply.
    expect(podFacts(pod({ ...EIPS, 'egw.io/elastic-ip-standby': 'false' }, [{ type: 'Ready', status: 'True' }])).ready).toBe(true);
    expect(podFacts(pod({ 'egw.io/elastic-ip-standby': 'true' }, [{ type: 'Ready', status: 'True' }])).ready).toBe(true);
  });
});
